"""The ``ltxgraph`` command: run, validate, ops, cache. Exit codes: 0 ok, 2 invalid input, 1 runtime failure,
130 interrupted. No traceback unless ``--debug``."""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

from .allocator import return_large_frees_to_os, use_huge_pages
from .api import DEFAULT_DISK_BYTES, Graph, Runner, load
from .comfyui import convert_document, export_api
from .loader import SourceDoc, detect_format, graph_from_doc, not_a_graph, read_document
from .validate import validate
from .writer import graph_yaml
from .cache import DiskStore, default_cache_dir
from .cache_info import format_bytes, render_info
from .compute_dtype import CHOICES
from .context import RunSettings
from .errors import InvalidInput, LtxGraphError
from .media_limits import MediaLimits
from .paths import Folders, atomic_write_bytes, file_in_the_way
from .progress import ConsoleProgress
from .registry import Registry
from .server.command import add_serve_command, serve
from .summary import refused_report, refused_summary, run_summary, summary_lines
from .wording import CLI_NAMES

TRUE_WORDS, FALSE_WORDS = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def parse_assignments(graph: Graph, assignments: Sequence[str]) -> dict[str, Any]:
    """``name=value`` strings -> typed values using the graph's parameter types."""
    values: dict[str, Any] = {}
    for text in assignments:
        name, sep, raw = text.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--set {text!r}: write --set name=value")
        spec = graph.file.params.get(name)
        kind = spec.type if spec else "STRING"
        try:
            if kind == "INT":
                values[name] = int(raw)
            elif kind == "FLOAT":
                values[name] = float(raw)
            elif kind == "BOOLEAN":
                if raw.lower() not in TRUE_WORDS | FALSE_WORDS:
                    raise ValueError
                values[name] = raw.lower() in TRUE_WORDS
            else:
                values[name] = raw
        except ValueError:
            raise InvalidInput(f"--set {name}={raw!r}: parameter '{name}' must be a {kind}") from None
    return values


def parse_bytes(text: str) -> int:
    """'8G', '512M', '1.5GiB', '1000' -> bytes."""
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (cleaned[:-1], cleaned[-1]) if cleaned and cleaned[-1] in units else (cleaned, "")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (write e.g. 8G or 512M)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return int(value)


def parse_media_limits(text: str) -> MediaLimits:
    """'pixels=100M,frames=10000,bytes=16Gi,audio_seconds=3600' (any subset) -> the default limits so changed."""
    try:
        return MediaLimits.parse(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ltxgraph", description="Run LTX-2 graphs headlessly.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="also load ops from this Python module (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True)

    def graph_command(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("graph", help="graph file (YAML/JSON)")
        cmd.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a parameter")
        cmd.add_argument("--models-dir", action="append", default=[], type=Path,
                         help="models folder laid out like ComfyUI's (checkpoints/, loras/, ...); repeatable")
        cmd.add_argument("--input-dir", type=Path, default=Path.cwd(), help="where input media are looked up")
        cmd.add_argument("--out", type=Path, default=Path("output"), help="output folder (default ./output)")
        cmd.add_argument("--allow-outside-paths", action="store_true",
                         help="let file names in the graph reach outside their folders")
        cmd.add_argument("--device", default="cpu", help="torch device for model compute (default cpu)")
        cmd.add_argument("--memory-budget", type=parse_bytes, metavar="SIZE",
                         help="bytes the run may use, e.g. 8G: weights above it are streamed, the sampler's "
                              "passes and feed-forward chunks and the VAE decode tiles are sized to it "
                              "(default: no limit)")
        cmd.add_argument("--dtype", choices=CHOICES, default=os.environ.get("LTXGRAPH_DTYPE") or "auto",
                         help="what models compute in: auto picks bfloat16 where this machine's bfloat16 matmul "
                              "is faster than float32 (measured once, cached), CUDA: bfloat16 "
                              "(default $LTXGRAPH_DTYPE or auto)")
        cmd.add_argument("--compile", action="store_true", dest="compile_kernels",
                         help="fuse the transformer blocks' element-wise regions with torch.compile (needs a C++ "
                              "compiler; minutes of compiling on first use; measured no faster on our CPUs)")
        return cmd

    run = graph_command("run", "validate and run a graph")
    run.add_argument("--output", action="append", dest="outputs", metavar="NAME", help="compute only this output")
    run.add_argument("--report", type=Path, help="write a JSON report (per node: status, seconds, cache key)")
    run.add_argument("--preview", type=Path, metavar="DIR",
                     help="write a PNG preview of every sampling step's clean estimate into DIR")
    run.add_argument("--no-cache", action="store_true", help="neither read nor write cached results")
    run.add_argument("--no-resume", action="store_true",
                     help="start samplers afresh instead of continuing from the per-step checkpoints an "
                          "interrupted run left in the cache (they are removed)")
    run.add_argument("--cache-dir", type=Path, help=f"cache folder (default {default_cache_dir()})")
    run.add_argument("--cache-size", type=parse_bytes, default=DEFAULT_DISK_BYTES, metavar="SIZE",
                     help="most the disk cache may hold; least recently used results go first "
                          f"(default {format_bytes(DEFAULT_DISK_BYTES)})")
    run.add_argument("--media-limits", type=parse_media_limits, default=MediaLimits(), metavar="NAME=VALUE,...",
                     help="largest input media decoded: pixels (per frame), frames, bytes (decoded), audio_seconds; "
                          "0 = no limit (default pixels=67.1M,frames=5000,bytes=6Gi,audio_seconds=600)")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors")
    run.add_argument("--json", action="store_true",
                     help="print one JSON summary on stdout (status, seconds, files, outputs, cache hits)")
    graph_command("validate", "check a graph without running it")

    convert = sub.add_parser("convert", help="convert a ComfyUI workflow (UI or API format) to a graph file")
    convert.add_argument("workflow", help="ComfyUI workflow JSON")
    convert.add_argument("-o", "--output", type=Path, required=True, help="graph file to write (.yaml or .json)")
    export = sub.add_parser("export", help="export a graph as a ComfyUI API-format prompt")
    export.add_argument("graph", help="graph file (or workflow)")
    export.add_argument("-o", "--output", type=Path, required=True, help="prompt JSON to write")
    export.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override a parameter")

    ops = sub.add_parser("ops", help="list the available ops")
    ops.add_argument("name", nargs="?", help="show one op in full")
    ops.add_argument("--json", action="store_true", help="machine-readable output")
    ops.add_argument("--check", metavar="MODULE",
                     help="check the contracts of every op of MODULE on drawn inputs (needs hypothesis)")
    ops.add_argument("--examples", type=int, default=4, help="drawn inputs per op for --check (default 4)")

    from .batch.command import add_batch_parser
    add_batch_parser(sub, parse_bytes, parse_media_limits)

    cache = sub.add_parser("cache", help="inspect or clear the results cache")
    cache.add_argument("action", choices=["info", "clear"],
                       help="info: entries and bytes by op, total, limit and folder; clear: remove every entry")
    cache.add_argument("--cache-dir", type=Path, help=f"cache folder (default {default_cache_dir()})")
    cache.add_argument("--json", action="store_true", help="info as JSON (bytes as integers)")
    add_serve_command(sub, parse_bytes, CHOICES)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:    # the process's entry point: before any tensor, as torch reads its switch at the first one
        use_huge_pages()
    args = build_parser().parse_args(argv)
    return_large_frees_to_os()
    try:
        return _dispatch(args)
    except LtxGraphError as exc:
        report = getattr(exc, "report", None)
        if getattr(args, "report", None):
            _write_report(args.report, report.to_json() if report is not None else refused_report(exc, args.graph))
        if getattr(args, "json", False):
            print(json.dumps(run_summary(report) if report is not None else refused_summary(exc)))
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in ltxgraph or an op: one line, traceback with --debug
        if args.debug:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.plugin and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # plugins may be modules of the current project, as with python -m
    registry = Registry.discover(args.plugin)
    if args.command == "ops":
        return _check_ops(args) if args.check else _list_ops(registry, args)
    if args.command == "cache":
        store = DiskStore((args.cache_dir or default_cache_dir()) / "results", registry.storable,
                          DEFAULT_DISK_BYTES)
        if args.action == "clear":
            print(f"removed {store.clear()} entries from {store.root}")
        else:
            print(json.dumps(store.info(), indent=2) if args.json else render_info(store.info()))
        return 0
    if args.command == "convert":
        return _convert(registry, args)
    if args.command == "serve":
        return serve(args, registry)
    if args.command == "batch":
        from .batch.command import run_batch
        return run_batch(args, registry)
    _check_target(args.output if args.command == "export" else getattr(args, "report", None))
    graph = load(args.graph, registry)
    quiet = getattr(args, "quiet", False)
    for warning in graph.warnings if not quiet else ():
        print(f"warning: {warning}", file=sys.stderr)
    params = parse_assignments(graph, args.set)
    if args.command == "export":
        prompt = export_api(graph.file, registry, params)
        _write_target(args.output, json.dumps(prompt, indent=2).encode())
        print(f"wrote {args.output} ({len(prompt)} nodes)")
        return 0
    folders = Folders(tuple(args.models_dir), args.input_dir, args.out, args.allow_outside_paths, CLI_NAMES)
    progress = ConsoleProgress(mode="quiet" if quiet else None)
    if args.command == "validate":
        Runner(registry, use_cache=False, folders=folders, progress=progress,
               settings=RunSettings(args.device, dtype=args.dtype)).validate(graph, params)
        print(f"{args.graph}: valid ({len(graph.file.nodes)} nodes)")
        return 0
    runner = Runner(registry, cache_dir=args.cache_dir, use_cache=not args.no_cache, folders=folders,
                    progress=progress, memory_bytes=0, disk_bytes=args.cache_size,
                    settings=RunSettings(args.device, args.memory_budget, args.preview, dtype=args.dtype,
                                         media_limits=args.media_limits, resume=not args.no_resume,
                                         compile_kernels=args.compile_kernels))
    result = runner.run(graph, params, args.outputs)
    if args.report:
        _write_report(args.report, result.report.to_json())
    summary = run_summary(result.report, result.outputs)
    if args.json:
        print(json.dumps(summary))
    elif not quiet:
        print("\n".join(summary_lines(summary)))
    return 0


def _convert(registry: Registry, args: argparse.Namespace) -> int:
    _check_target(args.output)
    doc = read_document(args.workflow)
    kind = detect_format(doc.data)
    if kind == "ltxgraph":
        raise InvalidInput(f"{args.workflow}: is already a graph file, not a ComfyUI workflow (nothing to convert)")
    if not kind.startswith("comfyui"):
        raise not_a_graph(doc)
    conversion = convert_document(doc, kind, registry)
    for warning in conversion.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    graph = conversion.graph
    converted = SourceDoc(graph, {}, f"{args.workflow} (converted)")
    validate(graph_from_doc(converted), registry, converted)  # types and values; model files are checked at run
    if args.output.suffix == ".json":
        text = json.dumps(graph, indent=2)
    else:
        text = graph_yaml(graph, f"converted from {Path(args.workflow).name} ({kind}) by ltxgraph convert")
    _write_target(args.output, text.encode())
    print(f"wrote {args.output} ({len(graph['nodes'])} nodes)")
    return 0


def _check_target(path: Path | None) -> None:
    """Refuse, before anything runs, a file to write that names a folder or lies under a file."""
    if path is None:
        return
    if path.is_dir():
        raise InvalidInput(f"{path}: is a folder; name a file to write")
    blocking = file_in_the_way(path)
    if blocking is not None:
        raise InvalidInput(f"{path}: cannot be written, {blocking} is a file")


def _write_target(path: Path, data: bytes) -> None:
    """``data`` written whole to ``path``, its missing folders created."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be written ({exc.strerror or exc})") from None


def _write_report(path: Path, report: dict[str, Any]) -> None:
    """The report written, or (when it cannot be) one line saying why: it never hides the run's own error."""
    try:
        _write_target(path, json.dumps(report, indent=2).encode())
    except InvalidInput as exc:
        print(f"error: report not written: {exc}", file=sys.stderr)


def _list_ops(registry: Registry, args: argparse.Namespace) -> int:
    specs = [s for s in registry if args.name in (None, s.name)]
    if args.name and not specs:
        close = registry.suggest(args.name)
        raise InvalidInput(f"unknown op '{args.name}'" + (f" (did you mean '{close}'?)" if close else ""))
    if args.json:
        print(json.dumps([s.describe() for s in specs], indent=2, default=str))
        return 0
    for spec in specs:
        ins = ", ".join(f"{i.name}: {i.port.type}" + ("" if i.required else f" = {i.default!r}") for i in spec.inputs)
        outs = ", ".join(f"{n}: {t}" for n, t in spec.outputs) or "-"
        print(f"{spec.name} v{spec.version}\n    in:  {ins or '-'}\n    out: {outs}")
        if args.name and spec.description:
            print(f"    {spec.description}")
    return 0


def _check_ops(args: argparse.Namespace) -> int:
    """``ops --check MODULE``: one line per op (laws checked, exemptions, not drawn); exit 1 at a break."""
    try:
        from ltxgraph.testing import ContractError, check_ops
    except ImportError as exc:
        raise InvalidInput(f"ops --check needs hypothesis (pip install 'ltxgraph[test]'): {exc}") from exc
    registry = Registry.from_modules(args.check)
    if args.name and args.name not in registry:
        raise InvalidInput(f"op '{args.name}' is not in {args.check}")
    try:
        reports = check_ops(registry, args.examples, [args.name] if args.name else None)
    except ContractError as exc:
        print(f"contract broken: {exc}", file=sys.stderr)
        return 1
    for report in reports:
        if report.not_drawn:
            print(f"{report.op}: not checked ({report.not_drawn})")
            continue
        exempt = "".join(f"; exempt from {law}: {why}" for law, why in report.exempt.items())
        refusing = f"; refuses invalid {', '.join(report.refusing)}" if report.refusing else ""
        models = f"; models of LTX-{' / '.join(report.model_sets)}" if report.model_sets else ""
        fitted = "; related inputs drawn to agree" if report.fitted else ""
        print(f"{report.op}: ok on {report.checked} of {report.drawn} drawn inputs ({', '.join(report.laws)})"
              f"{fitted}{refusing}{models}{exempt}")
    print(f"{len(reports)} ops checked from {args.check}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
