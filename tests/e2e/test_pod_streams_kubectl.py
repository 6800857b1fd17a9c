"""kubectl attach / run -i / run -it / debug -i / port-forward and the official Python client's
``stream()`` attach and ``portforward()``, through a master process and a RunP lite (alice): the
API server relays each WebSocket to the agent, which joins the container's stdio or a TCP port.

kubectl 1.32 and 1.33 speak WebSocket (remotecommand v5; port-forward as SPDY tunnelled in a
WebSocket); kubectl 1.27 only SPDY and gets one clear error line."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningServer, free_port
from tests.e2e.conftest import Kubectl, make_kubectl
from tests.e2e.lite_network import Lite, one_lite, until
from tests.e2e.terminal import COLUMNS, ROWS, on_a_terminal
from tests.integration.lite_procs import start, stop

pytestmark = pytest.mark.slow
NS = "alice"
ECHO_SERVER = """
import socket, sys, threading
srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
def serve(conn):
    with conn:
        conn.sendall(b"echo:")
        while data := conn.recv(65536):
            conn.sendall(data)
while True:
    threading.Thread(target=serve, args=(srv.accept()[0],), daemon=True).start()
"""


@pytest.fixture(scope="module")
def lite(module_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lite]:
    with one_lite(module_server, tmp_path_factory.mktemp("lite"), NS) as running:
        yield running


def pod_yaml(name: str, command: list[str], *, stdin: bool = False, once: bool = False, tty: bool = False) -> str:
    extra = "".join(f"\n    {k}: true" for k, on in (("stdin", stdin), ("stdinOnce", once), ("tty", tty)) if on)
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {NS}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: app:v1
    command: {json.dumps(command)}{extra}
"""


def running(k: Kubectl, name: str, jsonpath: str = "{.status.containerStatuses[0].state.running.startedAt}") -> None:
    until(lambda: bool(k.out("get", "pod", name, "-n", NS, "-o", f"jsonpath={jsonpath}")), 60)


def test_attach_joins_a_containers_stdin_and_keeps_the_log(lite: Lite) -> None:
    k = lite.kubectl
    k.apply(pod_yaml("talker", ["sh", "-c", 'while read l; do echo "echo:$l"; done; echo bye'], stdin=True,
                     once=True), "talker.yaml")
    running(k, "talker")
    out = k.out("attach", "-i", "talker", "-n", NS, stdin="one\ntwo\n", timeout=60)
    assert "echo:one\necho:two" in out and out.endswith("bye"), out
    until(lambda: k.out("get", "pod", "talker", "-n", NS, "-o", "jsonpath={.status.phase}") == "Succeeded", 30)
    assert k.out("logs", "talker", "-n", NS) == "echo:one\necho:two\nbye"  # attached or not, the log has it all


def test_run_interactive_and_with_a_terminal(lite: Lite) -> None:
    k = lite.kubectl
    out = k.out("run", "oneshot", "-i", "--rm", "--restart=Never", "--image=app:v1", "-n", NS, "--",
                "sh", "-c", "read x; echo got:$x; exit 0", stdin="hello\n", timeout=90)
    assert "got:hello" in out, out
    until(lambda: "oneshot" not in k.out("get", "pods", "-n", NS, "-o", "name"), 30)  # --rm deleted it
    code, printed = on_a_terminal(k, "run", "term", "-it", "--rm", "--restart=Never", "--image=app:v1", "-n", NS,
                                  "--", "sh", "-c", "read x; test -t 0 && test -t 1 && echo tty:$x",
                                  typed=b"abc\r")
    assert code == 0 and "tty:abc" in printed, printed


def test_attach_to_a_running_terminal_with_kubectl_133(lite: Lite) -> None:
    k133 = make_kubectl("1.33", lite.server, lite.base / "kubectl133")
    # kubectl sends the terminal size and the typed line on separate channels: the size may land
    # just after the line, so the shell polls for it (up to 5 s; "0 0" then fails the test)
    script = ('read l; echo "said:$l"; i=0; while [ "$(stty size)" = "0 0" ] && [ $i -lt 50 ]; do '
              'i=$((i+1)); sleep 0.1; done; stty size')
    k133.apply(pod_yaml("shell", ["sh", "-c", script], stdin=True, tty=True), "shell.yaml")
    running(k133, "shell")
    code, printed = on_a_terminal(k133, "attach", "-it", "shell", "-n", NS, typed=b"hi\r", timeout=30)
    assert code == 0 and "said:hi" in printed, printed
    assert f"{ROWS} {COLUMNS}" in printed, printed  # kubectl's terminal size reached the container's terminal
    until(lambda: "said:hi" in k133.out("logs", "shell", "-n", NS), 10)  # the terminal's output is logged
    k133.run("delete", "pod", "shell", "-n", NS, "--wait=false")


def test_debug_runs_an_ephemeral_container_in_the_pod(lite: Lite) -> None:
    k = lite.kubectl
    k.apply(pod_yaml("target", ["sh", "-c", "while :; do sleep 0.2; done"]), "target.yaml")
    running(k, "target")
    out = k.out("debug", "-i", "target", "-n", NS, "--image=app:v1", "--container=dbg", "--",
                "sh", "-c", "read x; echo debug:$x:$HOSTNAME", stdin="zz\n", timeout=90)
    assert "debug:zz:target" in out, out
    status = "{.status.ephemeralContainerStatuses[0].state.terminated.exitCode}"
    until(lambda: k.out("get", "pod", "target", "-n", NS, "-o", f"jsonpath={status}") == "0", 30)
    spec = json.loads(k.out("get", "pod", "target", "-n", NS, "-o", "jsonpath={.spec.ephemeralContainers}"))
    assert [c["name"] for c in spec] == ["dbg"] and spec[0]["stdin"] is True
    assert k.out("logs", "target", "-c", "dbg", "-n", NS) == "debug:zz:target"
    assert k.out("get", "pod", "target", "-n", NS, "-o", "jsonpath={.status.phase}") == "Running"
    k133 = make_kubectl("1.33", lite.server, lite.base / "kubectl133dbg")
    code, printed = on_a_terminal(k133, "debug", "-it", "target", "-n", NS, "--image=app:v1", "--container=dbgtty",
                                  "--", "sh", typed=b"echo dbg-$((6*7))\rexit\r")
    assert code == 0 and "dbg-42" in printed, printed


def _echo_pod(k: Kubectl, port: int) -> None:
    script = lite_script(k.workdir)
    k.apply(pod_yaml("echo", [sys.executable, str(script), str(port)]), "echo.yaml")
    running(k, "echo")
    until(lambda: _connects(port), 30)


def lite_script(workdir: Path) -> Path:
    path = workdir / "echo_server.py"
    path.write_text(ECHO_SERVER)
    return path


def _connects(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _roundtrip(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        data = b""
        while len(data) < len(payload) + 5:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def test_port_forward_with_kubectl_132_and_133(lite: Lite) -> None:
    k = lite.kubectl
    target = free_port()
    _echo_pod(k, target)
    for client in (k, make_kubectl("1.33", lite.server, lite.base / "kubectl133pf")):
        local = free_port()
        proc = client.popen("port-forward", "pod/echo", f"{local}:{target}", "-n", NS)
        try:
            assert proc.stdout is not None
            assert f"Forwarding from 127.0.0.1:{local}" in proc.stdout.readline()
            assert _roundtrip(local, b"ping") == b"echo:ping"
            big = os.urandom(300_000)
            assert _roundtrip(local, big) == b"echo:" + big  # many SPDY data frames, several WebSocket messages
            assert _roundtrip(local, b"again") == b"echo:again"  # a second connection on the same tunnel
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    closed, local = free_port(), free_port()
    proc = k.popen("port-forward", "pod/echo", f"{local}:{closed}", "-n", NS)
    try:
        assert proc.stdout is not None and "Forwarding from" in proc.stdout.readline()
        with socket.create_connection(("127.0.0.1", local), timeout=10) as s:
            assert s.recv(10) == b""  # the pod refused: kubectl closes the local connection
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert f"error forwarding port {closed} to pod echo" in err, err
    old = make_kubectl("1.27", lite.server, lite.base / "kubectl127")
    local = free_port()
    refused = old.popen("port-forward", "pod/echo", f"{local}:{target}", "-n", NS)
    _, err = refused.communicate(timeout=30)
    assert refused.returncode != 0 and "SPDY/3.1+portforward.k8s.io" in err, err
    attach = old.run("attach", "echo", "-n", NS, check=False, timeout=30)
    assert attach.returncode != 0 and "v5.channel.k8s.io" in attach.stderr, attach.stderr
    assert attach.stderr.strip().splitlines()[-1].startswith("Error from server (BadRequest): "), attach.stderr


def test_official_python_client_attach_and_port_forward(lite: Lite) -> None:
    from kubernetes import client as k8s
    from kubernetes import config as kube_config
    from kubernetes.stream import portforward, stream

    api = kube_config.new_client_from_config(str(lite.server.kubeconfig))
    core = k8s.CoreV1Api(api)
    k = lite.kubectl
    k.apply(pod_yaml("pyattach", ["sh", "-c", "read x; echo py:$x"], stdin=True, once=True), "pyattach.yaml")
    running(k, "pyattach")
    ws = stream(core.connect_get_namespaced_pod_attach, "pyattach", NS, stdin=True, stdout=True, stderr=True,
                tty=False, _preload_content=False)
    ws.write_stdin("from-python\n")
    out = ""
    deadline = time.monotonic() + 30
    while ws.is_open() and "py:from-python" not in out and time.monotonic() < deadline:
        ws.update(timeout=1)
        if ws.peek_stdout():
            out += ws.read_stdout()
    ws.close()
    assert "py:from-python" in out, out  # stdin sent as text frames (what the Python client does with str)
    target = free_port()
    if k.run("get", "pod", "echo", "-n", NS, check=False).returncode == 0:
        k.run("delete", "pod", "echo", "-n", NS, "--wait=true", timeout=60)
    _echo_pod(k, target)
    forward = portforward(core.connect_get_namespaced_pod_portforward, "echo", NS, ports=str(target))
    sock = forward.socket(target)
    sock.settimeout(10)
    sock.sendall(b"py-ping")
    got = b""
    while len(got) < len(b"echo:py-ping"):
        got += sock.recv(100)
    assert got == b"echo:py-ping"
    sock.close()
    assert forward.error(target) is None
    closed = free_port()
    refused = portforward(core.connect_get_namespaced_pod_portforward, "echo", NS, ports=str(closed))
    until(lambda: refused.error(closed) is not None, 10)
    assert f"error forwarding port {closed} to pod echo" in str(refused.error(closed))


def test_attach_after_an_agent_restart_streams_the_adopted_containers_output(lite: Lite) -> None:
    """The container outlives its agent; its stdin (held by the old agent) is gone, its output is not."""
    k = lite.kubectl
    k.apply(pod_yaml("survivor", ["sh", "-c", "while :; do echo tick; sleep 0.2; done"], stdin=True), "survivor.yaml")
    running(k, "survivor")
    stop(lite.agent)
    lite.agent = start(lite.config)
    # the new agent publishes its new kubelet port: logs through it work again
    until(lambda: "tick" in k.run("logs", "survivor", "-n", NS, "--tail=1", check=False).stdout, 30)
    proc = k.popen("attach", "survivor", "-n", NS)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert first == "tick", err
    restarts = "jsonpath={.status.containerStatuses[0].restartCount}"
    assert k.out("get", "pod", "survivor", "-n", NS, "-o", restarts) == "0"


def test_an_oversized_stream_message_is_refused_at_the_api_server(lite: Lite) -> None:
    """Regression (review): the API server relayed pod-stream WebSockets with no message bound, so a
    single huge (or deflated) message from a tenant was buffered whole in the shared master."""
    import asyncio

    import aiohttp

    from atoll.client.kubelet import STREAM_MESSAGE_MAX

    k, server = lite.kubectl, lite.server
    target = free_port()
    if k.run("get", "pod", "echo", "-n", NS, check=False).returncode == 0:
        k.run("delete", "pod", "echo", "-n", NS, "--wait=true", timeout=60)
    _echo_pod(k, target)
    url = f"{server.url}/api/v1/namespaces/{NS}/pods/echo/portforward"

    async def forward(payload: bytes) -> tuple[bytes, aiohttp.WSMessage]:
        """Send ``payload`` on the port's data channel; what came back on it, and the last message."""
        async with aiohttp.ClientSession() as session, session.ws_connect(
                url, params={"ports": str(target)}, protocols=("v4.channel.k8s.io",), headers=server.headers(),
                ssl=server.ssl_context(), max_msg_size=0) as ws:
            try:
                await ws.send_bytes(b"\x00" + payload)
            except ConnectionError:
                pass  # refused while still sending
            channel = b""  # the data channel: the port (2 bytes), then what the pod sent
            while (msg := await asyncio.wait_for(ws.receive(), 30)).type == aiohttp.WSMsgType.BINARY:
                channel += msg.data[1:] if msg.data[0] == 0 else b""
                if channel.endswith(b"small"):
                    break
            return channel[2:], msg

    echoed, last = asyncio.run(forward(bytes(STREAM_MESSAGE_MAX + 1)))
    assert echoed in (b"", b"echo:"), f"{len(echoed)} bytes came back: the oversized message reached the pod"
    assert last.type != aiohttp.WSMsgType.BINARY, last
    assert last.type != aiohttp.WSMsgType.CLOSE or last.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG, last
    echoed, _ = asyncio.run(forward(b"small"))  # the relay and the node still serve the next stream
    assert echoed.endswith(b"echo:small"), echoed
