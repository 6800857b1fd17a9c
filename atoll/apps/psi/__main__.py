"""``python -m atoll.apps.psi``: run the PSI app (see :mod:`atoll.apps.psi.main`)."""

from atoll.apps.psi.main import main

main()
