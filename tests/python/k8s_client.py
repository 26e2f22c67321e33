"""The official Kubernetes Python client (PyPI `kubernetes`), unmodified, against Strata.

Usage: k8s_client.py KUBECONFIG NAMESPACE
Lists, creates, updates with a resourceVersion (and sees a stale one refused), and watches
from a resourceVersion. Exits non-zero with a message on the first difference from what
kube-apiserver would answer.
"""
import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException


def main():
    kubeconfig, ns = sys.argv[1], sys.argv[2]
    config.load_kube_config(config_file=kubeconfig)
    v1 = client.CoreV1Api()

    names = [n.metadata.name for n in v1.list_namespace().items]
    assert "default" in names and "kube-system" in names, names

    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    created = v1.create_namespaced_config_map(
        ns,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py", labels={"from": "python"}),
                           data={"a": "1"}),
    )
    assert created.metadata.uid and created.metadata.resource_version, created.metadata

    listed = v1.list_namespaced_config_map(ns, label_selector="from=python")
    assert [c.metadata.name for c in listed.items] == ["py"], listed.items
    start_rv = listed.metadata.resource_version
    assert start_rv, "a list carries its resourceVersion"

    # Watch from the list's resourceVersion: exactly the changes after it.
    seen = []
    done = threading.Event()

    def watcher():
        w = watch.Watch()
        for ev in w.stream(v1.list_namespaced_config_map, ns,
                           resource_version=start_rv, timeout_seconds=30):
            seen.append((ev["type"], ev["object"].metadata.name, ev["object"].data))
            if ev["type"] == "DELETED":
                w.stop()
        done.set()

    t = threading.Thread(target=watcher, daemon=True)
    t.start()

    current = v1.read_namespaced_config_map("py", ns)
    current.data["a"] = "2"
    updated = v1.replace_namespaced_config_map("py", ns, current)
    assert updated.data["a"] == "2"
    assert int(updated.metadata.resource_version) > int(current.metadata.resource_version)

    # A stale resourceVersion is a 409 Conflict.
    current.data["a"] = "3"
    try:
        v1.replace_namespaced_config_map("py", ns, current)
        raise AssertionError("a stale update succeeded")
    except ApiException as e:
        assert e.status == 409, e

    v1.delete_namespaced_config_map("py", ns)
    assert done.wait(60), "the watch never saw the delete: %r" % seen
    types = [s[0] for s in seen]
    assert types == ["MODIFIED", "DELETED"], seen
    assert seen[0][2] == {"a": "2"}, seen

    try:
        v1.read_namespaced_config_map("py", ns)
        raise AssertionError("read after delete succeeded")
    except ApiException as e:
        assert e.status == 404, e
    print("ok")


if __name__ == "__main__":
    main()
