"""Throughput of `skinvault scrub` against peer tools, on one batch, in one run.

    .venv/bin/python bench/scrub.py            # 200 files of 12 MP (default)
    .venv/bin/python bench/scrub.py --files 50 --repeat 1

Builds a batch of phone-sized (4000 x 3000) JPEGs carrying a real camera's full
EXIF (GPS, maker notes, embedded thumbnail) and XMP, copied from the corpus
file 042-jpg-gps-dscn0010.jpg, then times, each as one command over the whole
batch including start-up:

- skinvault scrub (this project)
- exiftool -all= (batch mode, one process)
- mat2 (one process over all files)
- jpegtran -copy none (one process per file: it takes one file at a time)
- cp (the I/O floor)

and prints files/s, MB/s, throughput relative to exiftool, whether decoded
pixels are identical (checked on a sample) and whether exiftool still finds
identifying metadata in the outputs. Wall time is the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "data" / "corpus" / "042-jpg-gps-dscn0010.jpg"
IDENTIFYING = (
    "GPS",
    "Make",
    "Model",
    "DateTimeOriginal",
    "Software",
    "Thumbnail",
    "XMP",
    "MakerNote",
)


def metadata_segments(jpeg: bytes) -> bytes:
    """The APP1 (EXIF, XMP) segments of a JPEG, as raw bytes."""
    out, pos = [], 2
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF and jpeg[pos + 1] != 0xDA:
        length = int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        if jpeg[pos + 1] == 0xE1:
            out.append(jpeg[pos : pos + 2 + length])
        pos += 2 + length
    return b"".join(out)


def make_batch(folder: Path, count: int) -> int:
    """Write ``count`` 12 MP JPEGs with full metadata; return total bytes."""
    source = SOURCE.read_bytes()
    meta = metadata_segments(source)
    rng = np.random.default_rng(7)
    base = (
        Image.open(io.BytesIO(source)).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    )
    pixels = np.asarray(base).astype(np.int16)
    variants = []
    for _ in range(4):  # a few distinct images; real sensor-like noise keeps files phone-sized
        noisy = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(noisy).save(buf, "JPEG", quality=92)
        variants.append(buf.getvalue())
    total = 0
    for i in range(count):
        body = variants[i % len(variants)]
        comment = f"batch photo {i}".encode()
        com = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
        data = body[:2] + meta + com + body[2:]
        (folder / f"IMG_{i:04}.jpg").write_bytes(data)
        total += len(data)
    return total


#: Environment of the timed skinvault runs; see :func:`installed_like`.
SKINVAULT_ENV: dict[str, str] = dict(os.environ)


def installed_like(work: Path, src: Path, baselines: tuple[Path, ...] = ()) -> dict[str, str]:
    """An environment that runs skinvault as ``pip install`` leaves it: with compiled bytecode.

    A checkout run with PYTHONDONTWRITEBYTECODE (as this one is, to keep __pycache__ out of
    the tree) would compile the whole package from source on every timed run, which no
    installed copy does. The bytecode goes to a cache inside the temporary work folder,
    filled by one untimed scrub of a few files (enough to start the worker pool).
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    warm = work / "warm-up"
    warm.mkdir()
    for p in sorted(src.iterdir())[: 2 * (os.cpu_count() or 1)]:
        os.link(p, warm / p.name)
    exe = Path(sys.executable).with_name("skinvault")
    subprocess.run(
        [str(exe), "scrub", str(warm), "--out", str(work / "warm-up-out")],
        check=True,
        capture_output=True,
        env=env,
    )
    for extra in baselines:
        subprocess.run(
            [str(exe), "scrub", str(warm), "--out", str(work / "warm-up-out")],
            check=True,
            capture_output=True,
            env={**env, "PYTHONPATH": str(extra)},
        )
    shutil.rmtree(warm)
    shutil.rmtree(work / "warm-up-out")
    return env


def run_skinvault(src: Path, dst: Path, env: dict[str, str] | None = None) -> None:
    exe = Path(sys.executable).with_name("skinvault")
    subprocess.run(
        [str(exe), "scrub", str(src), "--out", str(dst)],
        check=True,
        capture_output=True,
        env=env or SKINVAULT_ENV,
    )


def baseline_tool(source: Path) -> tuple[Callable[[Path, Path], None], str]:
    """The same command run from another copy of the package (``--baseline``), same launcher."""

    def run(src: Path, dst: Path) -> None:
        run_skinvault(src, dst, {**SKINVAULT_ENV, "PYTHONPATH": str(source)})

    return run, "skinvault-baseline"


def run_exiftool(src: Path, dst: Path) -> None:
    subprocess.run(
        ["exiftool", "-q", "-q", "-all=", "-o", f"{dst}/", str(src)],
        check=True,
        capture_output=True,
    )


def run_mat2(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, dirs_exist_ok=True)
    files = sorted(str(p) for p in dst.iterdir())
    subprocess.run(["mat2", "--inplace", *files], check=True, capture_output=True)


def run_jpegtran(src: Path, dst: Path) -> None:
    dst.mkdir(exist_ok=True)
    for p in sorted(src.iterdir()):
        subprocess.run(
            ["jpegtran", "-copy", "none", "-outfile", str(dst / p.name), str(p)], check=True
        )


def run_cp(src: Path, dst: Path) -> None:
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)


TOOLS: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "skinvault scrub": (run_skinvault, "skinvault"),
    "exiftool -all=": (run_exiftool, "exiftool"),
    "mat2": (run_mat2, "mat2"),
    "jpegtran -copy none": (run_jpegtran, "jpegtran"),
    "cp (I/O floor)": (run_cp, "cp"),
}


def pixels(path: Path) -> bytes:
    with Image.open(path) as img:
        return np.asarray(img).tobytes()


def check(src: Path, dst: Path, sample: int) -> tuple[str, str]:
    """(pixel-identical, metadata left) on a sample of outputs matched by order."""
    inputs = sorted(src.iterdir())[:sample]
    outputs = sorted(dst.rglob("*.jpg"))[:sample]
    if len(outputs) < len(inputs):
        return "n/a", "n/a"
    same = all(pixels(a) == pixels(b) for a, b in zip(inputs, outputs, strict=True))
    found = json.loads(
        subprocess.run(
            ["exiftool", "-j", "-G1", "-a", *map(str, outputs)], capture_output=True, check=True
        ).stdout
    )
    left = sorted(
        {
            k.split(":", 1)[1]
            for meta in found
            for k in meta
            if ":" in k
            and any(word in k for word in IDENTIFYING)
            and not k.startswith(("System", "ICC"))
        }
    )
    return ("yes" if same else "no"), (", ".join(left[:4]) if left else "none")


def steps(src: Path, work: Path) -> None:
    """Print where one process spends its time per photo: the parts of a plain scrub."""
    from skinvault import batch  # only for --steps
    from skinvault.photos import jpeg
    from skinvault.photos.scrub import clean

    out = work / "steps-out"
    out.mkdir()
    batch._reuse_big_buffers()
    spent: dict[str, list[float]] = {
        k: [] for k in ("read", "find scan end", "clean (all)", "write", "verify")
    }
    for path in sorted(src.iterdir()):
        t0 = time.perf_counter()
        data = batch.read_photo(path)
        t1 = time.perf_counter()
        jpeg.parse(data)  # the part of clean() that finds where entropy-coded data ends
        t2 = time.perf_counter()
        cleaned, report = clean(data)
        t3 = time.perf_counter()
        fd, tmp = batch._temp_file(out)
        batch._write(fd, cleaned.parts, durable=False)
        t4 = time.perf_counter()
        batch._verify_written(fd, report.format, cleaned)
        t5 = time.perf_counter()
        os.close(fd)
        tmp.unlink()
        for key, took in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            spent[key].append(took)
    print(f"\nper photo, one process, median of {len(spent['read'])} photos:")
    for key, times in spent.items():
        print(f"  {key:<16}{statistics.median(times) * 1e3:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=5, help="outputs checked per tool")
    parser.add_argument("--only", nargs="*", help="tool names to run (default: all found)")
    parser.add_argument("--verbose", action="store_true", help="print every timed run")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else ROOT / "bench",
        help="working folder (default: /dev/shm, a RAM disk, so disk writeback noise"
        " does not decide the result; pass a disk folder to include the disk)",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds) for CI")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="a src/ folder of another version (e.g. from `git archive <commit> src`), timed"
        " interleaved with this one as 'skinvault (baseline)'",
    )
    parser.add_argument(
        "--steps", action="store_true", help="also time the parts of a scrub in one process"
    )
    args = parser.parse_args()
    if args.baseline:
        TOOLS["skinvault (baseline)"] = baseline_tool(args.baseline.resolve())
    if args.quick:
        args.files, args.repeat, args.sample, args.only = 2, 1, 1, args.only or ["skinvault"]

    with tempfile.TemporaryDirectory(prefix="skinvault-bench-", dir=args.dir) as tmp:
        work = Path(tmp)
        src = work / "in"
        src.mkdir()
        print(
            f"making {args.files} JPEGs of 12 MP with full EXIF/GPS/thumbnail/XMP …",
            file=sys.stderr,
        )
        total = make_batch(src, args.files)
        print(f"batch: {args.files} files, {total / 1e6:.0f} MB", file=sys.stderr)
        SKINVAULT_ENV.clear()
        SKINVAULT_ENV.update(
            installed_like(work, src, (args.baseline.resolve(),) if args.baseline else ())
        )
        os.sync()  # the batch's own writeback must not land in the first tool's timing
        load_before = os.getloadavg()[0]
        chosen = {
            name: spec
            for name, spec in TOOLS.items()
            if not args.only or any(o in name for o in args.only)
        }
        times: dict[str, list[float]] = {name: [] for name in chosen}
        cpu: dict[str, list[float]] = {name: [] for name in chosen}
        verdicts: dict[str, tuple[str, str]] = {}
        missing = {
            n
            for n, (_, exe) in chosen.items()
            if not exe.startswith("skinvault") and not shutil.which(exe)
        }
        order = [n for n in chosen if n not in missing]
        if args.steps:
            steps(src, work)
        for round_no in range(args.repeat):
            # Rotate the order each round so no tool always runs first or last.
            shift = round_no % max(len(order), 1)
            for name in order[shift:] + order[:shift]:
                run, exe = chosen[name]
                dst = work / f"out-{exe}"
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                run(src, dst)
                times[name].append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(
                    after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                )
                if args.verbose:
                    print(f"    {name}: {times[name][-1]:.3f} s", file=sys.stderr)
                if round_no == args.repeat - 1:
                    verdicts[name] = check(src, dst, args.sample)
                shutil.rmtree(dst)
                os.sync()  # this tool's writeback stays out of the next tool's timing
            print(f"  round {round_no + 1}/{args.repeat} done", file=sys.stderr)
        rows: list[tuple[str, float | None, float, str, str]] = []
        for name in chosen:
            if name in missing:
                rows.append((name, None, 0.0, "not installed", ""))
            else:
                rows.append(
                    (
                        name,
                        statistics.median(times[name]),
                        statistics.median(cpu[name]),
                        *verdicts[name],
                    )
                )

    base = next((r for r in rows if r[0].startswith("exiftool") and r[1]), None)
    header = (
        f"{'tool':<22}{'wall s':>8}{'files/s':>9}{'MB/s':>7}{'vs exiftool':>12}"
        f"{'CPU s':>8}{'CPU vs exiftool':>17}  {'pixel-identical':<16}metadata left"
    )
    print(
        f"\n{args.files} JPEGs, 12 MP, {total / 1e6:.0f} MB, in {args.dir},"
        f" median of {args.repeat} runs, {os.cpu_count()} cores,"
        f" load average before {load_before:.2f}, after {os.getloadavg()[0]:.2f};"
        " skinvault with compiled bytecode, as installed\n"
    )
    print(header)
    print("-" * len(header))
    for name, seconds, cpu_s, same, left in rows:
        if seconds is None:
            print(f"{name:<22}{same}")
            continue
        ratio = f"{base[1] / seconds:.2f}x" if base and base[1] else "n/a"
        cpu_ratio = f"{base[2] / cpu_s:.2f}x" if base and cpu_s else "n/a"
        print(
            f"{name:<22}{seconds:>8.2f}{args.files / seconds:>9.1f}{total / 1e6 / seconds:>7.0f}"
            f"{ratio:>12}{cpu_s:>8.2f}{cpu_ratio:>17}  {same:<16}{left}"
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    main()
