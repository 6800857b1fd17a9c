"""What a plain pod update may change in ``spec`` (kube-apiserver's ``ValidatePodUpdate``).

A pod's spec is fixed once created, but for: each container's and init container's ``image``;
``activeDeadlineSeconds`` (set, or lowered — never removed or raised); ``tolerations`` (only
additions); ``terminationGracePeriodSeconds`` (set to 1 when it was negative); ``schedulingGates``
(only removals) and, while the pod is gated, additions to ``nodeSelector``. ``spec.nodeName`` is
set by the ``binding`` subresource, ephemeral containers by ``ephemeralcontainers``; neither by an
update. Anything else is a 422 ``Forbidden`` naming the fields that differ, as upstream refuses it.
The comparison is upstream's: the allowed changes of the new spec are set back to the old values
(a "munged" copy), and what is left must equal the old spec.
"""

from __future__ import annotations

from typing import Any

from atoll.api import errors

JSON = dict[str, Any]

ALLOWED = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def check_pod_update(name: str, old_spec: JSON, new_spec: JSON) -> None:
    """Refuse (422) a plain update whose spec changes more than upstream allows."""
    if new_spec == old_spec:
        return
    munged = _munged(old_spec, new_spec)
    if munged == old_spec:
        return
    changed = sorted(k for k in {*old_spec, *munged} if old_spec.get(k) != munged.get(k))
    message = f"Forbidden: {ALLOWED}; changed: {', '.join(f'spec.{k}' for k in changed)}"
    raise errors.invalid("Pod", "", name, [errors.cause("FieldValueForbidden", "spec", message)])


def _munged(old: JSON, new: JSON) -> JSON:
    """``new`` with every change upstream allows set back to ``old``'s value."""
    out = dict(new)
    for fld in ("containers", "initContainers"):
        out[fld] = _images_kept(old.get(fld), new.get(fld))
        if out[fld] is None:
            out.pop(fld)
    _keep_if(out, old, "activeDeadlineSeconds", _deadline_ok(old.get("activeDeadlineSeconds"),
                                                              new.get("activeDeadlineSeconds")))
    _keep_if(out, old, "tolerations", all(t in (new.get("tolerations") or []) for t in old.get("tolerations") or []))
    grace_old, grace_new = old.get("terminationGracePeriodSeconds"), new.get("terminationGracePeriodSeconds")
    _keep_if(out, old, "terminationGracePeriodSeconds",
             isinstance(grace_old, int) and grace_old < 0 and grace_new == 1)
    gates_old, gates_new = old.get("schedulingGates") or [], new.get("schedulingGates") or []
    _keep_if(out, old, "schedulingGates", all(g in gates_old for g in gates_new))
    selector_old, selector_new = old.get("nodeSelector") or {}, new.get("nodeSelector") or {}
    _keep_if(out, old, "nodeSelector", bool(gates_old) and isinstance(selector_new, dict)
             and all(selector_new.get(k) == v for k, v in selector_old.items()))
    return out


def _keep_if(out: JSON, old: JSON, fld: str, allowed: bool) -> None:
    if not allowed:
        return
    if fld in old:
        out[fld] = old[fld]
    else:
        out.pop(fld, None)


def _deadline_ok(old: Any, new: Any) -> bool:
    if new is None:
        return old is None
    return isinstance(new, int) and new > 0 and (old is None or (isinstance(old, int) and new <= old))


def _images_kept(old: Any, new: Any) -> Any:
    """``new``'s containers with ``old``'s images, when they are the same containers in order."""
    if not isinstance(old, list) or not isinstance(new, list) or len(old) != len(new):
        return new
    out = []
    for before, after in zip(old, new, strict=True):
        if not isinstance(before, dict) or not isinstance(after, dict) or before.get("name") != after.get("name"):
            return new
        out.append({**after, "image": before["image"]} if "image" in before else after)
    return out
