"""OKG's consumer rule for serviceQualities, played in Python against the pod conditions an API
server holds: which `serviceQualityAction` of a GameServerSet would fire, and what it would do
to the GameServer. Our own model of the facts (read from OpenKruise Game's GameServer
controller, syncServiceQualities in pkg/controllers/gameserver/gameserver_manager.go, commit
d76ace2), for tests that show the conditions okg-storaged writes drive OKG as Kruise's would:

- a serviceQuality NAME is read from the pod condition of type `game.kruise.io/NAME`, and only
  from it (not from labels or annotations); without that condition nothing happens;
- the condition's message with every `|` and newline removed is the result (a carriage return
  stays);
- the condition's status is parsed as Go's strconv.ParseBool does ("1", "t", "T", "TRUE",
  "true", "True" and the false ones); anything else (`Unknown`) fires no action;
- an action fires when its `state` equals the parsed status and its `result` is empty or equal
  to the result; every firing action is applied in the order of the list (a later one
  overrides an earlier one's field): opsState, updatePriority, deletionPriority,
  networkDisabled, labels and annotations (merged into the GameServer's);
- actions run only when the GameServer has no condition for that serviceQuality yet, or its
  status or result changed, and (for a `permanent` serviceQuality) no action ran before;
- values may be Go templates over the result; this model renders `{{.Result}}` (with or
  without spaces) and refuses any other template, and a priority that does not render to an
  integer is skipped, as OKG skips it with a Warning event.

Also: installing OKG's and Kruise's real CRDs (the fixtures beside the project) into an API
server for such tests."""
import copy
import os
import re

PREFIX = "game.kruise.io/"

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE_FILES = ("game.kruise.io_gameservers.yaml", "game.kruise.io_gameserversets.yaml",
                 "apps.kruise.io_podprobemarkers.yaml")

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_RESULT = re.compile(r"\{\{\s*\.Result\s*\}\}")


def parse_bool(s):
    """Go's strconv.ParseBool: True, False, or None when it is an error (`Unknown`)."""
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    return None


def result_of(message):
    """The result OKG compares: the message without `|` and newlines."""
    return (message or "").replace("|", "").replace("\n", "")


def render(value, result):
    if "{{" not in value:
        return value
    rendered = _RESULT.sub(lambda _: result, value)
    if "{{" in rendered:
        raise NotImplementedError(f"template {value!r}: only {{{{.Result}}}} is modelled")
    return rendered


def _priority(value, result):
    """An IntOrString priority; a template must render to an integer, else it is skipped."""
    if isinstance(value, str) and "{{" in value:
        try:
            return int(render(value, result))
        except ValueError:
            return None
    return value


def find_condition(conditions, sq_name):
    for c in conditions or []:
        if c.get("type") == PREFIX + sq_name:
            return c
    return None


def fired_actions(sq, condition):
    """Indexes of the serviceQualityActions of one serviceQuality that match a pod condition
    (None: no condition), before the "did anything change" rule."""
    if condition is None:
        return []
    state = parse_bool(condition.get("status"))
    if state is None:
        return []
    result = result_of(condition.get("message"))
    return [i for i, a in enumerate(sq.get("serviceQualityAction") or [])
            if a.get("state") == state and (not a.get("result") or a["result"] == result)]


class GameServer:
    """What OKG's controller changes on a GameServer: spec fields, labels, annotations, and
    status.serviceQualitiesCondition (name, status, result, whether an action ran)."""

    def __init__(self, spec=None, labels=None, annotations=None):
        self.spec = dict(spec or {})
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.conditions = {}      # name -> {"status", "result", "acted"}

    def apply(self, action, result):
        if action.get("deletionPriority") is not None:
            p = _priority(action["deletionPriority"], result)
            if p is not None:
                self.spec["deletionPriority"] = p
        if action.get("updatePriority") is not None:
            p = _priority(action["updatePriority"], result)
            if p is not None:
                self.spec["updatePriority"] = p
        if action.get("opsState"):
            self.spec["opsState"] = render(action["opsState"], result)
        if action.get("networkDisabled") is not None:
            self.spec["networkDisabled"] = bool(action["networkDisabled"])
        for k, v in (action.get("labels") or {}).items():
            self.labels[k] = render(v, result)
        for k, v in (action.get("annotations") or {}).items():
            self.annotations[k] = render(v, result)


def sync(gss, pod_conditions, gs):
    """One pass of OKG's controller over a GameServerSet's serviceQualities and the pod's
    conditions; changes gs. Returns {sq name: [indexes of the actions that ran]}."""
    ran = {}
    new_conditions = {}
    for sq in (gss.get("spec") or {}).get("serviceQualities") or []:
        name = sq["name"]
        cond = find_condition(pod_conditions, name)
        ran[name] = []
        if cond is None:
            new_conditions[name] = {"status": "", "result": "", "acted": False}
            continue
        status, result = cond.get("status", ""), result_of(cond.get("message"))
        before = gs.conditions.get(name)
        changed = before is None or before["status"] != status or before["result"] != result
        acted = before["acted"] if before else False
        if changed and (not acted or not sq.get("permanent")):
            acted = False
            for i in fired_actions(sq, cond):
                gs.apply(sq["serviceQualityAction"][i], result)
                ran[name].append(i)
                acted = True
        new_conditions[name] = {"status": status, "result": result, "acted": acted}
    gs.conditions = new_conditions
    return ran


# ---- OKG's and Kruise's CRDs for tests ----

def _main_checkout():
    """The main checkout of this repository when TOP is a linked git worktree, else TOP."""
    import subprocess
    try:
        common = subprocess.run(["git", "-C", TOP, "rev-parse", "--path-format=absolute",
                                 "--git-common-dir"], capture_output=True, text=True,
                                timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return TOP
    return os.path.dirname(common) if common.endswith("/.git") else TOP


def fixtures_dir():
    """$OKG_FIXTURES_DIR, default <repo>/../shared/fixtures (<repo> this checkout, or the main
    checkout when this is a git worktree). Raises (never skips) when the CRDs are not there: the
    tests that need them must fail, saying where they looked."""
    if os.environ.get("OKG_FIXTURES_DIR"):
        candidates = [os.path.abspath(os.environ["OKG_FIXTURES_DIR"])]
    else:
        candidates = [os.path.abspath(os.path.join(top, "..", "shared", "fixtures"))
                      for top in dict.fromkeys((TOP, _main_checkout()))]
    for d in candidates:
        if all(os.path.isfile(os.path.join(d, f)) for f in FIXTURE_FILES):
            return d
    raise RuntimeError(f"OKG/Kruise CRD fixtures ({', '.join(FIXTURE_FILES)}) not found in "
                       f"{' or '.join(candidates)}; set OKG_FIXTURES_DIR to the directory "
                       f"holding them")


def fixture_crd_text(path):
    """The CRD as published, minus the `default: ""` of a gRPC probe's `service`, which
    kube-apiserver 1.20 refuses (a default in a structural schema it cannot validate)."""
    lines = open(path).read().split("\n")
    out = []
    for i, line in enumerate(lines):
        if line.strip() == 'default: ""' and i > 0 and lines[i - 1].strip() == "service:":
            continue
        out.append(line)
    return "\n".join(out)


def install_fixture_crds(admin):
    """Applies the real GameServer, GameServerSet and PodProbeMarker CRDs through an admin
    client of kube.py; returns the CRD objects as the server stored them."""
    import yaml
    d = fixtures_dir()
    objs = []
    for f in FIXTURE_FILES:
        objs += [o for o in yaml.safe_load_all(fixture_crd_text(os.path.join(d, f))) if o]
    return admin.apply(objs)


def gameserverset(name, service_qualities, replicas=1):
    """A GameServerSet object in the fixtures' schema (game.kruise.io/v1alpha1)."""
    return {
        "apiVersion": "game.kruise.io/v1alpha1", "kind": "GameServerSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "gameServerTemplate": {"spec": {"containers": [{"name": "game", "image": "nginx:stable"}]}},
            "serviceQualities": copy.deepcopy(service_qualities),
        },
    }
