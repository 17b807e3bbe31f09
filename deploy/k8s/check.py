"""Checks the rendered Kubernetes manifests against the image and quiverd.

Usage: check.py RENDERED_YAML QUIVERD_HELP (deploy/k8s/check.sh passes
`kubectl kustomize deploy/k8s` and `quiverd --help`). Reads the Dockerfile,
deploy/docker-entrypoint.sh and deploy/compose/docker-compose.yml from the
current directory (the repository's root). Prints every mismatch and exits 1
if there is one.
"""
import re
import sys

import yaml

problems = []


def check(ok, what):
    if not ok:
        problems.append(what)


def dockerfile_facts(path):
    """EXPOSE, VOLUME, USER, HEALTHCHECK CMD of the Dockerfile's last stage."""
    text = open(path).read().replace("\\\n", " ")
    last = text.split("\nFROM ")[-1]
    facts = {}
    for line in last.splitlines():
        words = line.split()
        if not words:
            continue
        if words[0] == "EXPOSE":
            facts["ports"] = {int(w.split("/")[0]) for w in words[1:]}
        elif words[0] == "VOLUME":
            facts["volumes"] = set(words[1:])
        elif words[0] == "USER":
            uid, _, gid = words[1].partition(":")
            facts["uid"], facts["gid"] = int(uid), int(gid or uid)
        elif words[0] == "HEALTHCHECK":
            cmd = re.search(r"CMD\s+(\[.*\])", line)
            facts["health"] = yaml.safe_load(cmd.group(1)) if cmd else None
    return facts


def quiverd_flags(help_text):
    return set(re.findall(r"--([a-z][a-z0-9-]*)", help_text))


def main():
    docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
    flags = quiverd_flags(open(sys.argv[2]).read())
    image = dockerfile_facts("Dockerfile")
    entrypoint = open("deploy/docker-entrypoint.sh").read()
    compose = yaml.safe_load(open("deploy/compose/docker-compose.yml"))
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    for kind in ("StatefulSet", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"):
        check(kind in by_kind, f"no {kind}")
    if problems:
        return
    sts = by_kind["StatefulSet"][0]
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"]["labels"]
    (container,) = pod["containers"]

    # Image: the name README's `docker build -t quiver` and compose use.
    compose_image = compose["services"]["quiverd"]["image"]
    default_image = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", compose_image)
    check(container["image"].split(":")[0] == default_image,
          f"image {container['image']} is not {default_image} (compose's)")

    # Ports: the container's, the Services' targets and the Dockerfile's EXPOSE.
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    check(set(ports.values()) == image["ports"],
          f"container ports {sorted(ports.values())} are not EXPOSE {sorted(image['ports'])}")
    for svc in by_kind["Service"]:
        check(svc["spec"]["selector"].items() <= labels.items(),
              f"Service {svc['metadata']['name']} selects no pod of the StatefulSet")
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            check(target in ports or target in ports.values(),
                  f"Service {svc['metadata']['name']} targets port {target}, not a container port")
    check(any(s["metadata"]["name"] == spec["serviceName"] and s["spec"].get("clusterIP") == "None"
              for s in by_kind["Service"]),
          f"serviceName {spec['serviceName']} is not a headless Service")
    check(spec["selector"]["matchLabels"].items() <= labels.items(),
          "the StatefulSet's selector does not match its pods")
    for pdb in by_kind["PodDisruptionBudget"]:
        check(pdb["spec"]["selector"]["matchLabels"].items() <= labels.items(),
              "the PodDisruptionBudget selects no pod of the StatefulSet")

    # Volumes: the data claim is mounted where the image's VOLUME is.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])]
    check(len(claims) == 1 and mounts.get(claims[0]) in image["volumes"],
          f"the claim {claims} is not mounted at the image's VOLUME {sorted(image['volumes'])}")
    pod_volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for name in mounts:
        check(name in pod_volumes or name in claims, f"mount {name} has no volume")

    # Probes: the image's health check, for readiness and liveness.
    for probe in ("readinessProbe", "livenessProbe"):
        p = container.get(probe)
        check(p is not None, f"no {probe}")
        if p is None:
            continue
        command = p.get("exec", {}).get("command")
        grpc_port = p.get("grpc", {}).get("port")
        check(command == image.get("health") or grpc_port in image["ports"],
              f"{probe} is neither the image's HEALTHCHECK {image.get('health')} nor a gRPC "
              f"probe of an exposed port")

    # Security: non-root as the image's user, read-only root file system.
    psc = pod.get("securityContext", {})
    csc = container.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, "runAsNonRoot is not set")
    check(psc.get("runAsUser") == image["uid"] and psc.get("runAsGroup") == image["gid"],
          f"runs as {psc.get('runAsUser')}:{psc.get('runAsGroup')}, the image as "
          f"{image['uid']}:{image['gid']}")
    check(csc.get("readOnlyRootFilesystem") is True, "the root file system is writable")
    check(csc.get("allowPrivilegeEscalation") is False, "privilege escalation is allowed")
    check(mounts.get("tmp") == "/tmp", "no writable /tmp for the entrypoint")
    for kind in ("requests", "limits"):
        check({"cpu", "memory"} <= set(container.get("resources", {}).get(kind, {})),
              f"no cpu and memory {kind}")

    # quiverd's flags: arguments and the ConfigMap's keys.
    args = container.get("args", [])
    for a in args:
        if a.startswith("--"):
            check(a[2:].split("=")[0] in flags, f"argument {a} is not a quiverd flag")
    config_maps = {c["metadata"]["name"]: c for c in by_kind["ConfigMap"]}
    for v in pod_volumes.values():
        if "configMap" in v:
            cm = config_maps.get(v["configMap"]["name"])
            check(cm is not None, f"ConfigMap {v['configMap']['name']} is missing")
            if cm is None:
                continue
            path = mounts[v["name"]]
            for fname, body in cm["data"].items():
                check(f"{path}/{fname}" in args, f"{path}/{fname} is not passed to --config")
                for line in body.splitlines():
                    key = line.split("=")[0].strip()
                    if key and not key.startswith("#"):
                        check(key in flags, f"config key {key} is not a quiverd flag")
                        check(key not in ("listen", "data-dir"),
                              f"config key {key} is overridden by the entrypoint")
    # Environment: variables the entrypoint reads; the keys file in the Secret.
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    for name in env:
        check(name in entrypoint, f"the entrypoint does not read {name}")
    keys_file = env.get("QUIVER_API_KEYS_FILE", "/etc/quiver/api-keys")
    secrets = {s["metadata"]["name"]: s for s in by_kind["Secret"]}
    found = False
    for name, path in mounts.items():
        secret = pod_volumes.get(name, {}).get("secret")
        if secret and keys_file.startswith(path + "/"):
            data = secrets.get(secret["secretName"], {})
            keys = set(data.get("stringData", {})) | set(data.get("data", {}))
            found = keys_file[len(path) + 1:] in keys
    check(found, f"the API keys file {keys_file} is not a key of a mounted Secret")
    grace = int(env.get("QUIVER_SHUTDOWN_GRACE_SECONDS", 0))
    check(0 < grace and grace + 5 <= pod.get("terminationGracePeriodSeconds", 30),
          f"quiverd's grace {grace} s does not end 5 s before terminationGracePeriodSeconds")


if __name__ == "__main__":
    main()
    for p in problems:
        print(f"deploy/k8s: {p}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print("deploy/k8s: manifests match the Dockerfile, the entrypoint and quiverd's flags")
