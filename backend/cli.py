"""The ``talgate`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__

# `talgate commit` exits with this when the answer does not say how the commit ended yet (it is
# still running, or no answer came in time): not a failure — `talgate status` tells.
EXIT_RUNNING = 3
COMMIT_WAIT = 45.0  # seconds the agent may take before answering "still running" (< the socket's 60)


def _client(args):
    from .client import AgentClient

    return AgentClient(getattr(args, "socket", None))


def _print_problems(problems, out=None) -> None:
    out = out or sys.stderr  # looked up now: a redirected stderr (tests, wrappers) gets them too
    for p in problems:
        p = p if isinstance(p, dict) else p.model_dump()
        tag = "" if p.get("severity", "error") == "error" else "warning: "
        print(f"{p['path']}: {tag}{p['message']}", file=out)


# What to do next, by the agent's error code (the message says what happened).
HINTS = {
    "conflict": "someone committed since your edit started: `talgate config get -o FILE` (or look at "
                "`talgate diff`), redo your change on top, commit again",
    "would_cut": "fix the rule, or apply anyway with --force --confirm SECONDS (rolled back unless confirmed)",
    "confirm_pending": "run `talgate confirm` or `talgate rollback` first",
    "needs_confirm": "add --confirm SECONDS: a forced change rolls itself back unless you confirm it",
    "read_only": "this is the read-only socket; use the read-write one (group talgate) to change anything",
    "unreachable": "is the agent running? (`talgate lab up`, or --socket PATH / $TALGATE_SOCKET)",
    "unauthorized": "set $TALGATE_TOKEN to the agent's API token",
}


def _fail(e) -> int:
    from .client import AgentError

    if isinstance(e, AgentError):
        print(f"talgate: {e.message} [{e.code}]", file=sys.stderr)
        _print_problems(e.problems)
        if e.code in HINTS:
            print(f"talgate: {HINTS[e.code]}", file=sys.stderr)
        return 2 if e.code == "unreachable" else 1
    print(f"talgate: {e}", file=sys.stderr)
    return 1


def _worktree(args, client) -> tuple[str, str]:
    """(path, text) of the candidate: -f FILE, or router.yaml in the agent's repo."""
    path, text, _base = _candidate(args, client, need_base=False)
    return path, text


STDIN_PATHS = ("-", "/dev/stdin")


def _sidecar(path: str) -> Path:
    """Where `talgate config get -o FILE` records the revision FILE was written from."""
    p = Path(path)
    return p.with_name(f".{p.name}.talgate-base")


def _file_base(path: str, status) -> str | None:
    """The revision a candidate file was based on: its sidecar (written by `config get -o`), or the
    HEAD of the git clone it lives in (a clone of the config repo). None when it cannot be told."""
    if path in STDIN_PATHS:
        return None
    try:
        rev = _sidecar(path).read_text(errors="replace").strip()
        if rev:
            return rev
    except OSError:
        pass
    try:
        import pygit2

        found = pygit2.discover_repository(str(Path(path).resolve().parent))
        if not found:
            return None
        r = pygit2.Repository(found)
        if r.workdir and Path(r.workdir).resolve() == Path(status.repo or "/nonexistent").resolve():
            return status.worktree_base  # the agent's own working tree
        if r.head_is_unborn:
            return None
        return str(r.head.target)
    except Exception:  # noqa: BLE001 - not a git clone we can read: no base
        return None


def _candidate(args, client, need_base: bool = True) -> tuple[str, str, str | None]:
    """(path, text, base) of the candidate. base is the revision the edit started from: --base, the
    agent's record of its working tree, or the file's own record; a stale base is a conflict at
    the agent, so two admins editing the same revision cannot silently undo each other."""
    path = getattr(args, "file", None)
    status = client.status()
    if not path:
        path = str(Path(status.repo or ".") / "router.yaml")
    from .model import ConfigError
    from .model.load import read_document

    try:
        text = read_document(path)  # bounded; not UTF-8 -> "PATH: not UTF-8 text: byte 0x.. at line L, column C"
    except ConfigError as e:
        raise SystemExit(f"talgate: {e}") from None
    base = getattr(args, "base", None)
    if base is None:
        if not getattr(args, "file", None):
            base = status.worktree_base or (None if status.worktree_dirty else status.head)
        else:
            base = _file_base(path, status)
    if base is None and need_base:
        raise SystemExit(
            f"talgate: cannot tell which revision {path} was based on: pass --base REV (the revision "
            "you started from; `talgate log` lists them), or --base HEAD to replace whatever HEAD is "
            "now. `talgate config get -o FILE` records it for you.")
    return path, text, base


# -- commands ----------------------------------------------------------------------------


def cmd_validate(args) -> int:
    from .model import ConfigError, validate_text
    from .model.load import read_document

    path = args.file or "router.yaml"
    try:
        text = read_document(path)
    except ConfigError as e:
        _print_problems([p.to_dict() for p in e.problems])
        return 1
    cfg, problems = validate_text(text, source=path)
    _print_problems([p.to_dict() for p in problems])
    if cfg is None:
        return 1
    print(f"{path}: valid" + (f" ({len(problems)} warning(s))" if problems else ""))
    return 0


def cmd_config_get(args) -> int:
    c = _client(args)
    r = c.config(args.rev)
    if not args.output:
        sys.stdout.write(r.text)
        return 0
    Path(args.output).write_text(r.text)
    _sidecar(args.output).write_text(r.rev + "\n")
    print(f"{args.output}: revision {r.rev[:12]}; edit it, then `talgate commit -f {args.output} -m MSG` "
          "(refused as a conflict if HEAD moves meanwhile)")
    return 0


def cmd_schema(args) -> int:
    from .model import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_api_schema(args) -> int:
    from .api.openapi import document

    print(json.dumps(document(), indent=2))
    return 0


def cmd_diff(args) -> int:
    c = _client(args)
    if args.rev:
        d = c.diff(args.rev[0], args.rev[1] if len(args.rev) > 1 else "HEAD")
        sys.stdout.write(d.diff)
        return 0
    path, text, base = _candidate(args, c, need_base=False)
    d = c.diff_candidate(text, base)
    if d.problems:
        _print_problems(d.problems)
    sys.stdout.write(d.diff or f"# {path}: no changes against HEAD\n")
    if args.nft and d.nft_diff:
        sys.stdout.write(d.nft_diff)
    return 0


def cmd_commit(args) -> int:
    from .client import AgentUnreachable

    c = _client(args)
    path, text, base = _candidate(args, c)
    wait = float(os.environ.get("TALGATE_COMMIT_WAIT") or COMMIT_WAIT)
    try:
        r = c.commit(text, args.message, base=base, confirm=args.confirm, force=args.force, wait=wait)
    except AgentUnreachable as e:
        if not e.timed_out:
            raise
        print(f"talgate: no answer from the agent within {wait:.0f} s: the commit may still land; "
              "see `talgate status` (head, last error) before committing again", file=sys.stderr)
        return EXIT_RUNNING
    if r.state == "running":
        print(f"still running, rev {(r.rev or '(not created yet)')[:12]} — see `talgate status` (job {r.job})")
        return EXIT_RUNNING
    if args.file and args.file not in STDIN_PATHS and _sidecar(args.file).exists() and r.rev:
        _sidecar(args.file).write_text(r.rev + "\n")  # the file now equals the new HEAD
    _print_problems(r.warnings)
    if r.changes == 0 and r.message:
        print(r.message)
        return 0
    print(f"committed {r.rev[:12]} and applied it: {r.changes} change(s) in {(r.seconds or 0) * 1000:.0f} ms")
    for cut in r.lockout_overridden or []:
        print(f"warning: forced past the lockout check: {cut}", file=sys.stderr)
    for note in [*r.notes, *(r.get("service_warnings") or [])]:
        print(f"warning: {note}", file=sys.stderr)
    if r.confirm:
        print(f"waiting for confirmation: run `talgate confirm` within {r.confirm.seconds} s, "
              "or it is rolled back automatically")
    return 0


def cmd_confirm(args) -> int:
    r = _client(args).confirm()
    print(f"confirmed {r.rev[:12]}: the rollback timer is cancelled")
    return 0


def cmd_apply(args) -> int:
    r = _client(args).apply(args.rev)
    print(f"applied {r.rev[:12]}: {r.changes} change(s)")
    return 0


def cmd_rollback(args) -> int:
    r = _client(args).rollback(args.rev)
    print(f"rolled back: new commit {r.rev[:12]} applied with {r.changes} change(s)")
    return 0


def cmd_log(args) -> int:
    import time

    if args.audit:
        entries = _client(args).audit(args.n)
        if args.json:
            print(json.dumps(entries, indent=2))
            return 0
        for e in entries:
            t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["time"]))
            what = e.get("message") or e.get("reason") or "; ".join(e.get("items", [])) or ""
            rev = (e.get("rev") or "")[:12]
            print(f"{t}  {e['action']:<12} {e.get('user', '?'):<12} {e.get('via', ''):<24} {rev:<12} {what}")
        return 0
    entries = _client(args).log(args.n)
    if args.json:
        print(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return 0
    for e in entries:
        t = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time))
        print(f"{e.rev[:12]}  {t}  {e.author:<12}  {e.message.splitlines()[0]}")
    return 0


def cmd_status(args) -> int:
    from .status_text import status_lines

    st = _client(args).status().model_dump(mode="json")
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    for line in status_lines(st):
        print(line)
    return 0


def cmd_render(args) -> int:
    print(_client(args).render(args.rev).nft, end="")
    return 0


def cmd_trace(args) -> int:
    c = _client(args)
    candidate = _worktree(args, c)[1] if args.candidate else None
    pkt = {"iif": args.iif, "src": args.src, "dst": args.dst, "proto": args.proto, "dport": args.dport,
           "sport": args.sport, "icmp_type": args.icmp_type}
    r = c.trace(pkt, candidate).model_dump(mode="json")
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    where = "router itself" if r["egress"] == "self" else f"{r['egress']} (zone {r['egress_zone']})"
    print(f"{r['verdict'].upper()}  by {r['rule'] or '-'}   [{r['config']} config]")
    if not r["egress"]:
        where = "(not routed: dropped before the routing decision)" if r["hook"] == "prerouting" else "-"
    print(f"  in {args.iif} (zone {r['ingress_zone']}) -> {where}   hook {r['hook']}")
    for n in r["nat"]:
        print(f"  {n['type']} to {n['to']}   ({n['rule']})")
    if args.verbose:
        for s in r["steps"]:
            print(f"    {s['chain']:<22} {s['rule'] or '':<32} {s['verdict']}")
    return 0


def cmd_agent(args) -> int:
    from .agent.server import run_agent

    return run_agent(args.repo, args.state, args.socket, args.ro_socket, args.init_from, args.rendered,
                     args.socket_group, args.reconcile_interval, args.metrics_listen or None,
                     args.listen, args.token_file)


def _lab(args):
    from .lab.lab import DEFAULT_STATE, Lab

    state = args.state or (DEFAULT_STATE if args.prefix == "tg-" else f"{DEFAULT_STATE}.{args.prefix.strip('-')}")
    return Lab(args.prefix, Path(state))


def cmd_lab(args) -> int:
    from .lab.lab import LabError

    lab = _lab(args)
    try:
        if args.lab_cmd == "up":
            text = Path(args.config).read_text() if args.config else None
            from .lab.isp_dhcp import up_with_isp_dhcp, wants_isp_dhcp

            if text and wants_isp_dhcp(text):  # e.g. backend/lab/uplink.yaml: the isp runs Kea + radvd
                up_with_isp_dhcp(lab, text)
            else:
                lab.up(text, topology=args.topology)
            st = lab.status()
            print(f"lab up ({st['topology']} topology): {' '.join(st['namespaces'])}")
            print(f"  agent      pid {st['processes']['agent']['pid']}, log {lab.state / 'agent.log'}")
            print(f"  sockets    {lab.socket} (read-write), {lab.ro_socket} (read-only)")
            print(f"  config     {lab.repo}/router.yaml — edit it, then `talgate diff` and `talgate commit -m MSG`")
            print("  try        talgate status; talgate lab exec lan -- ping -c1 203.0.113.10")
            if lab.socket != "/run/talgate-lab/agent.sock":
                print(f"  export TALGATE_SOCKET={lab.socket}")
        elif args.lab_cmd == "down":
            removed = lab.down()
            print("lab down: removed " + (" ".join(removed) if removed else "nothing (no lab namespaces)"))
        elif args.lab_cmd == "status":
            st = lab.status()
            if args.json:
                print(json.dumps(st, indent=2))
            else:
                print(f"lab {'up' if st['up'] else 'down'} ({st['topology']} topology, hosts {' '.join(st['hosts'])}): "
                      f"{' '.join(st['namespaces']) or 'no namespaces'}")
                for name, p in st["processes"].items():
                    print(f"  {name:<14} pid {p['pid']:<8} {'running' if p['alive'] else 'DEAD'}")
            return 0 if st["up"] else 3
        elif args.lab_cmd == "exec":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                raise LabError("nothing to run: talgate lab exec HOST -- CMD...")
            argv = lab.exec_args(args.host, cmd)
            os.execvp(argv[0], argv)
    except LabError as e:
        print(f"talgate lab: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_talos_render(args) -> int:
    from .model import ConfigError, validate_text
    from .model.load import read_document
    from .render.talos import render_talos_links

    try:
        text = read_document(args.file) if args.file else _client(args).config().text
    except ConfigError as e:
        _print_problems([p.to_dict() for p in e.problems])
        return 1
    cfg, problems = validate_text(text)
    if cfg is None:
        _print_problems([p.to_dict() for p in problems])
        return 1
    sys.stdout.write(render_talos_links(cfg))
    return 0


def cmd_console(args) -> int:
    try:
        from console.app import run
    except ImportError as e:
        print(f"talgate: the console is not available: {e}", file=sys.stderr)
        return 1
    return run(socket=args.socket, read_only=args.read_only)


# -- parser ------------------------------------------------------------------------------


def cmd_leases(args) -> int:
    import time

    leases = [x.model_dump(mode="json") for x in _client(args).leases()]
    if args.json:
        print(json.dumps({"leases": leases}, indent=2))
        return 0
    now = time.time()
    print(f"{'v':<2} {'address':<28} {'hostname':<20} {'mac / duid':<30} {'interface':<10} expires in")
    for x in leases:
        left = int(x["expires"] - now)
        ident = x.get("hwaddr") if x["family"] == 4 else x.get("duid")
        print(f"{x['family']:<2} {x['address']:<28} {(x.get('hostname') or '-'):<20} {(ident or '-'):<30} "
              f"{(x.get('interface') or '-'):<10} {left // 60}m{left % 60:02d}s")
    return 0


def cmd_routes(args) -> int:
    from .observe.routes_text import table_lines

    res = _client(args).routes(args.table)
    if args.json:
        print(json.dumps(res.model_dump(mode="json"), indent=2))
        return 0
    print("\n".join(table_lines([r.model_dump(mode="json") for r in res.routes], res.truncated, res.frr)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="talgate", description="talgate router: config in git, applied by one agent")
    p.add_argument("--version", action="version", version=f"talgate {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def with_socket(sp):
        sp.add_argument("--socket", metavar="PATH",
                        help="agent socket (default: $TALGATE_SOCKET, /run/talgate/agent.sock, the lab's), "
                             "or http://ADDR:PORT for a remote agent (token in $TALGATE_TOKEN)")
        return sp

    cfg = sub.add_parser("config", help="validate the document, print its schema")
    csub = cfg.add_subparsers(dest="config_cmd", required=True)
    v = csub.add_parser("validate", help="check a router.yaml (default ./router.yaml; - for stdin)")
    v.add_argument("file", nargs="?")
    v.set_defaults(func=cmd_validate)
    s = csub.add_parser("schema", help="print the JSON Schema of router.yaml")
    s.set_defaults(func=cmd_schema)
    g = with_socket(csub.add_parser("get", help="the document at HEAD (or REV); with -o, a file to edit "
                                                "whose base revision is recorded for the commit"))
    g.add_argument("rev", nargs="?")
    g.add_argument("-o", "--output", metavar="FILE")
    g.set_defaults(func=cmd_config_get)

    api = sub.add_parser("api", help="the agent's HTTP+JSON API")
    asub = api.add_subparsers(dest="api_cmd", required=True)
    asch = asub.add_parser("schema", help="print the OpenAPI document (generated from the route table)")
    asch.set_defaults(func=cmd_api_schema)

    d = with_socket(sub.add_parser("diff", help="the working tree's router.yaml against HEAD"))
    d.add_argument("-f", "--file", help="candidate file instead of the repo's working tree")
    d.add_argument("--nft", action="store_true", help="also show the rendered nftables diff")
    d.add_argument("--rev", nargs="+", metavar="REV", help="diff between revisions instead (A [B])")
    d.set_defaults(func=cmd_diff)

    c = with_socket(sub.add_parser("commit", help="validate, commit and apply the working tree's router.yaml"))
    c.add_argument("-m", "--message", required=True)
    c.add_argument("-f", "--file", help="candidate file instead of the repo's working tree")
    c.add_argument("--base", help="revision the edit was based on (default: the working tree's, or FILE's "
                                  "from `config get -o`/its git clone); refused as a conflict if HEAD moved; "
                                  "HEAD replaces whatever is there")
    c.add_argument("--confirm", type=int, metavar="SECONDS",
                   help="roll back automatically unless `talgate confirm` follows within SECONDS")
    c.add_argument("--force", action="store_true", help="apply even if it cuts an access path (needs --confirm)")
    c.set_defaults(func=cmd_commit)

    cf = with_socket(sub.add_parser("confirm", help="keep the commit made with --confirm"))
    cf.set_defaults(func=cmd_confirm)

    a = with_socket(sub.add_parser("apply", help="re-apply HEAD now; reports the changes made"))
    a.add_argument("rev", nargs="?", help=argparse.SUPPRESS)
    a.set_defaults(func=cmd_apply)

    r = with_socket(sub.add_parser("rollback", help="new commit restoring REV (default: the previous one)"))
    r.add_argument("rev", nargs="?")
    r.set_defaults(func=cmd_rollback)

    lg = with_socket(sub.add_parser("log", help="config history"))
    lg.add_argument("-n", type=int, default=20)
    lg.add_argument("--json", action="store_true")
    lg.add_argument("--audit", action="store_true",
                    help="the audit trail: commits, confirms, rollbacks, drift repairs and refusals, with who")
    lg.set_defaults(func=cmd_log)

    st = with_socket(sub.add_parser("status", help="agent, repo and apply state"))
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    rn = with_socket(sub.add_parser("render", help="print the nftables ruleset of HEAD (or REV)"))
    rn.add_argument("rev", nargs="?")
    rn.set_defaults(func=cmd_render)

    t = with_socket(sub.add_parser("trace", help="would this packet pass? verdict, deciding rule, NAT, egress"))
    t.add_argument("--in", dest="iif", required=True, metavar="IFACE", help="ingress interface")
    t.add_argument("--src", required=True)
    t.add_argument("--dst", required=True)
    t.add_argument("--proto", required=True, choices=["tcp", "udp", "icmp", "icmpv6"])
    t.add_argument("--dport", type=int)
    t.add_argument("--sport", type=int)
    t.add_argument("--icmp-type", default="echo-request")
    t.add_argument("--candidate", action="store_true", help="trace the working tree's router.yaml, not HEAD")
    t.add_argument("-f", "--file", help="candidate file (with --candidate)")
    t.add_argument("--json", action="store_true")
    t.add_argument("-v", "--verbose", action="store_true", help="show every chain and rule passed")
    t.set_defaults(func=cmd_trace)

    ag = sub.add_parser("agent", help="run the agent (the only process that touches the kernel)")
    ag.add_argument("--repo", default="/var/lib/talgate/repo")
    ag.add_argument("--state", default="/var/lib/talgate/state")
    ag.add_argument("--socket", default="/run/talgate/agent.sock")
    ag.add_argument("--ro-socket", default="/run/talgate/agent-ro.sock")
    ag.add_argument("--rendered", default="/var/lib/talgate/rendered",
                    help="folder for rendered service configs (read by the service daemons)")
    ag.add_argument("--socket-group", type=int, metavar="GID", help="group owning the sockets (consoles join it)")
    ag.add_argument("--reconcile-interval", type=float, default=2.0, metavar="SECONDS",
                    help="how often drift is checked and repaired (0: never)")
    ag.add_argument("--metrics-listen", default=":9469", metavar="[ADDR]:PORT",
                    help="Prometheus exporter (default :9469; empty: off); the firewall decides who reaches it")
    ag.add_argument("--listen", metavar="ADDR:PORT", help="also serve the API over TCP (remote clients; "
                    "needs --token-file); the caller's TCP connection is protected by the lockout check")
    ag.add_argument("--token-file", metavar="FILE", help="bearer token for --listen")
    ag.add_argument("--init-from", metavar="FILE", help="create the repo from FILE when it does not exist")
    ag.set_defaults(func=cmd_agent)

    lab = sub.add_parser("lab", help="the namespace lab on this machine")
    lab.add_argument("--prefix", default="tg-", help="namespace prefix (default tg-)")
    lab.add_argument("--state", help="state folder (default /run/talgate-lab)")
    lsub = lab.add_subparsers(dest="lab_cmd", required=True)
    up = lsub.add_parser("up", help="build the lab and start the agent in tg-router")
    up.add_argument("--config", help="initial router.yaml (default: the lab example; backend/lab/multiwan.yaml: "
                                     "two uplinks)")
    up.add_argument("--topology", help="lab topology: default, multiwan (default: the one the config names in a "
                                       "'# talgate-lab: topology=NAME' line, else default)")
    lsub.add_parser("down", help="stop the lab and remove its namespaces")
    ls = lsub.add_parser("status", help="namespaces and processes")
    ls.add_argument("--json", action="store_true")
    ex = lsub.add_parser("exec", help="run a command in a lab host: exec HOST -- CMD...")
    ex.add_argument("host")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    lab.set_defaults(func=cmd_lab)

    tl = sub.add_parser("talos", help="Talos machine-config pieces")
    tsub = tl.add_subparsers(dest="talos_cmd", required=True)
    tr = with_socket(tsub.add_parser("render", help="LinkConfig for the management link from the config"))
    tr.add_argument("file", nargs="?", help="router.yaml (default: HEAD from the agent)")
    tr.set_defaults(func=cmd_talos_render)

    co = with_socket(sub.add_parser("console", help="the Textual console"))
    co.add_argument("--read-only", action="store_true")
    co.set_defaults(func=cmd_console)

    le = with_socket(sub.add_parser("leases", help="DHCP leases (v4 and v6) as Kea holds them"))
    le.add_argument("--json", action="store_true")
    le.set_defaults(func=cmd_leases)

    ro = with_socket(sub.add_parser("routes", help="routing tables: connected, static, learned by BGP/OSPF"))
    ro.add_argument("--table", default="all", help="main, local, default, a number, or all (default: all but local)")
    ro.add_argument("--json", action="store_true")
    ro.set_defaults(func=cmd_routes)
    return p


def main(argv: list[str] | None = None) -> int:
    from .client import AgentError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except AgentError as e:
        return _fail(e)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `talgate log | head`: the reader left; say nothing more
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - flushed at exit, never written
        except OSError:
            pass
        return 0


if __name__ == "__main__":
    sys.exit(main())
