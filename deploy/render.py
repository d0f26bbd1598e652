#!/usr/bin/env python3
"""Renders okg-sidecar's Kubernetes manifests from a sidecar config.yaml and a template.

The config's `resources` (CPU/cpu, Memory/memory) become the okg-sidecar container's requests
and limits, and the config file itself becomes the config.yaml key of the ConfigMap that the
container mounts at /opt/sidecar. Comments and layout of the template are kept.

    deploy/render.py                      re-render every manifest in TARGETS
    deploy/render.py --check              exit 1, with a diff, if a committed one is stale
    deploy/render.py CONFIG TEMPLATE [-o OUT]

A template (*.yaml.in) is YAML with two placeholders, each alone on its line:

    ${OKG_RESOURCES}  where the container's `resources:` key goes, at the same indentation
    ${OKG_CONFIG}     the first line of a block scalar (`config.yaml: |`)

The output is parsed again and checked: every container named okg-sidecar has exactly the
config's resources, the ConfigMap it mounts at /opt/sidecar holds exactly the config, and a
native sidecar (an init container) has restartPolicy: Always and goes with
sidecarstartorder: Before. Needs python3 and python3-yaml (PyYAML)."""
import argparse
import difflib
import json
import os
import re
import sys

import yaml

DEPLOY = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(DEPLOY)
SIDECAR = "okg-sidecar"
CONFIG_DIR = "/opt/sidecar"

# (config, template, output), relative to deploy/.
TARGETS = [
    ("examples/hot-update-2048/config.yaml", "examples/hot-update-2048/manifest.yaml.in",
     "examples/hot-update-2048/manifest.yaml"),
    ("examples/probe/config.yaml", "examples/probe/manifest.yaml.in",
     "examples/probe/manifest.yaml"),
    ("examples/native-sidecar/config.yaml", "examples/native-sidecar/manifest.yaml.in",
     "examples/native-sidecar/manifest.yaml"),
    ("examples/service-quality/config.yaml", "examples/service-quality/manifest.yaml.in",
     "examples/service-quality/manifest.yaml"),
    ("kustomize/base/config.yaml", "kustomize/components/sidecar/patch.yaml.in",
     "kustomize/components/sidecar/patch.yaml"),
    ("kustomize/base/config.yaml", "kustomize/components/native-sidecar/patch.yaml.in",
     "kustomize/components/native-sidecar/patch.yaml"),
]

# A Kubernetes quantity, as okg-sidecard --check-config accepts it (docs/config.md).
QUANTITY = re.compile(r"^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$")
PLACEHOLDER = re.compile(r"^([ ]*)\$\{(OKG_[A-Z]+)\}[ ]*$")


class RenderError(Exception):
    pass


def _get_spelled(mapping, names, where):
    """The value of a key that has two accepted spellings; both at once is an error."""
    given = [n for n in names if n in mapping]
    if len(given) > 1:
        raise RenderError(f"{where}: both {given[0]!r} and {given[1]!r} given")
    return mapping.get(given[0]) if given else None


def config_resources(config):
    """{"cpu": "100m", "memory": "128Mi"} (keys present only when set) from a parsed config."""
    if not isinstance(config, dict):
        raise RenderError("the config is not a YAML mapping")
    res = config.get("resources")
    if res is None:
        return {}
    if not isinstance(res, dict):
        raise RenderError("resources: must be a mapping")
    unknown = set(res) - {"CPU", "cpu", "Memory", "memory"}
    if unknown:
        raise RenderError(f"resources: unknown key(s) {', '.join(sorted(unknown))}")
    out = {}
    for key, names in (("cpu", ("CPU", "cpu")), ("memory", ("Memory", "memory"))):
        value = _get_spelled(res, names, "resources")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise RenderError(f"resources.{names[0]}: not a quantity: {value!r}")
        text = str(value)
        if not QUANTITY.match(text):
            raise RenderError(f"resources.{names[0]}: not a Kubernetes quantity: {text!r}")
        out[key] = text
    return out


def resources_block(resources, indent):
    """The `resources:` key of a container: requests and limits both equal to the config's."""
    if not resources:
        return [f"{indent}resources: {{}}"]
    lines = [f"{indent}resources:"]
    for part in ("requests", "limits"):
        lines.append(f"{indent}  {part}:")
        for key in ("cpu", "memory"):
            if key in resources:
                # Quoted: `cpu: 1` or `0.5` would be a YAML number.
                lines.append(f"{indent}    {key}: {json.dumps(resources[key])}")
    return lines


def normalized_config(text):
    """The config as the ConfigMap holds it: a literal block keeps one final newline."""
    return text.rstrip() + "\n"


def render_text(config_text, template_text, header=None):
    """The rendered manifest text (not yet checked)."""
    config_text = normalized_config(config_text)
    first = next((line for line in config_text.splitlines() if line.strip()), "")
    if first.startswith((" ", "\t")):
        raise RenderError("the config's first line is indented; a block scalar cannot hold it")
    resources = config_resources(yaml.safe_load(config_text))
    out = [header] if header else []
    seen = set()
    for line in template_text.splitlines():
        m = PLACEHOLDER.match(line)
        if "${" in line and not m:
            raise RenderError(f"a placeholder must be alone on its line: {line.strip()!r}")
        if not m:
            out.append(line)
            continue
        indent, name = m.groups()
        seen.add(name)
        if name == "OKG_RESOURCES":
            out.extend(resources_block(resources, indent))
        elif name == "OKG_CONFIG":
            out.extend(indent + c if c else "" for c in config_text.splitlines())
        else:
            raise RenderError(f"unknown placeholder ${{{name}}}")
    if "OKG_RESOURCES" not in seen:
        raise RenderError("the template has no ${OKG_RESOURCES}")
    return "\n".join(out) + "\n"


def pod_specs(obj):
    """Every pod spec in an object: a Pod, a GameServerSet's gameServerTemplate, a workload's
    template, or a patch of one of them."""
    spec = (obj or {}).get("spec") or {}
    if obj.get("kind") == "Pod":
        return [spec]
    for key in ("gameServerTemplate", "template"):
        tpl = spec.get(key)
        if isinstance(tpl, dict) and isinstance(tpl.get("spec"), dict):
            return [tpl["spec"]]
    return []


def sidecars(pod_spec):
    """(container, is_init) for every container named okg-sidecar."""
    return ([(c, False) for c in pod_spec.get("containers") or [] if c.get("name") == SIDECAR]
            + [(c, True) for c in pod_spec.get("initContainers") or []
               if c.get("name") == SIDECAR])


def check_rendered(text, config_text, embeds_config):
    """Raises RenderError unless the rendered manifest says what the config says."""
    config_text = normalized_config(config_text)
    config = yaml.safe_load(config_text)
    resources = config_resources(config)
    order = str(_get_spelled(config, ("sidecarstartorder", "sidecarStartOrder"), "config")
                or "Before").lower()
    docs = [d for d in yaml.safe_load_all(text) if d]
    configmaps = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
    found = 0
    for doc in docs:
        for spec in pod_specs(doc):
            volumes = {v.get("name"): v for v in spec.get("volumes") or []}
            for c, is_init in sidecars(spec):
                found += 1
                want = ({part: dict(resources) for part in ("requests", "limits")}
                        if resources else {})
                if c.get("resources") != want:
                    raise RenderError(f"container {SIDECAR}: resources {c.get('resources')} "
                                      f"instead of {want}")
                if is_init and c.get("restartPolicy") != "Always":
                    raise RenderError(f"init container {SIDECAR} without restartPolicy: Always "
                                      "would never let the game start")
                if is_init and order != "before":
                    raise RenderError("sidecarstartorder After with a native sidecar: the "
                                      "sidecar would wait for a game that waits for it")
                if not embeds_config:
                    continue
                mount = next((m for m in c.get("volumeMounts") or []
                              if m.get("mountPath") == CONFIG_DIR), None)
                if not mount or mount.get("subPath"):
                    raise RenderError(f"container {SIDECAR}: no directory mount at {CONFIG_DIR}")
                cm_name = ((volumes.get(mount["name"]) or {}).get("configMap") or {}).get("name")
                cm = configmaps.get(cm_name)
                if cm is None:
                    raise RenderError(f"the ConfigMap {cm_name!r} mounted at {CONFIG_DIR} is not "
                                      "in the manifest")
                if (cm.get("data") or {}).get("config.yaml") != config_text:
                    raise RenderError(f"ConfigMap {cm_name}: config.yaml differs from the config")
    if not found:
        raise RenderError(f"no container named {SIDECAR} in the manifest")


def render(config_path, template_path):
    """The checked output for one config and template (paths as given)."""
    with open(config_path) as f:
        config_text = f.read()
    with open(template_path) as f:
        template_text = f.read()

    def shown(p):
        p = os.path.abspath(p)
        return os.path.relpath(p, TOP) if p.startswith(TOP + os.sep) else p

    header = (f"# Generated by deploy/render.py from {shown(template_path)}\n"
              f"# and {shown(config_path)}: edit those and run deploy/render.py again.")
    text = render_text(config_text, template_text, header)
    check_rendered(text, config_text, embeds_config="${OKG_CONFIG}" in template_text)
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="compare the TARGETS with their committed output instead of writing")
    ap.add_argument("config", nargs="?")
    ap.add_argument("template", nargs="?")
    ap.add_argument("-o", "--output", help="write here instead of stdout")
    args = ap.parse_args(argv)
    try:
        if args.config or args.template:
            if not (args.config and args.template) or args.check:
                ap.error("give CONFIG and TEMPLATE, or neither")
            text = render(args.config, args.template)
            if args.output:
                with open(args.output, "w") as f:
                    f.write(text)
            else:
                sys.stdout.write(text)
            return 0
        stale = 0
        for config, template, output in TARGETS:
            text = render(os.path.join(DEPLOY, config), os.path.join(DEPLOY, template))
            path = os.path.join(DEPLOY, output)
            try:
                with open(path) as f:
                    old = f.read()
            except FileNotFoundError:
                old = ""
            if old == text:
                continue
            if args.check:
                stale += 1
                sys.stdout.writelines(difflib.unified_diff(
                    old.splitlines(True), text.splitlines(True), f"deploy/{output}",
                    f"deploy/{output} (rendered)"))
            else:
                with open(path, "w") as f:
                    f.write(text)
                print(f"wrote deploy/{output}")
        if stale:
            print(f"{stale} manifest(s) out of date: run deploy/render.py", file=sys.stderr)
            return 1
        return 0
    except (RenderError, OSError, yaml.YAMLError) as e:
        print(f"render.py: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
