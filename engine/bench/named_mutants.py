"""The mutants issue 16 names, applied one at a time to a copy of the code: each must be killed by the method tests.

    python -m engine.bench.named_mutants [--out docs/results/named_mutants]

mutmut (`python -m mutmut run`, configured in pyproject.toml) generates operator and constant mutants of
engine/methods automatically; the mistakes named here are structural (the wrong model, the wrong features, a
missing update) and are written out by hand so none can be skipped. A mutant is killed when the test run
fails; every one is applied to a fresh copy of the repository, never to the working tree.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.bench.report import bench_header

REPO = Path(__file__).resolve().parents[2]
# the aimed tests first: with -x a killed mutant stops at its first failure
TESTS = ["tests/test_mutants_named.py", "tests/test_methods.py", "tests/test_s2mts2_stage1.py", "tests/test_fixmatch.py",
         "tests/test_method_options.py", "tests/test_losses.py", "tests/test_seg_unimatch.py", "tests/test_seg.py"]
M, L, S, E = "engine/methods/mean_teacher.py", "engine/methods/losses.py", "engine/methods/s2mts2.py", \
    "engine/methods/secl.py"
# (name, file, exact original text, mutated text)
NAMED: list[tuple[str, str, str, str]] = [
    ("S²MTS² stage-2 teacher reset removed", S, "copy_into(self.teacher, self.student)  # stage 2",
     "pass  # stage 2"),
    ("JCL variance term dropped", L, "spread = strength / (2.0 * tau * tau) * q_sigma_q",
     "spread = 0.0 * q_sigma_q"),
    ("JCL variance term sign flipped", L, "spread = strength / (2.0 * tau * tau) * q_sigma_q",
     "spread = -strength / (2.0 * tau * tau) * q_sigma_q"),
    ("teacher forward replaced by the student", M, "teacher_out = self.teacher_forward(teacher_view)",
     "teacher_out = self.student_forward(teacher_view)"),
    ("S²MTS² keys from the student", S, 'feats = torch.cat([self.teacher(chunk)["feat"]',
     'feats = torch.cat([self.student(chunk)["feat"]'),
    ("S²MTS² no momentum update", S, "ema_update(self.teacher, self.student, p.key_momentum, buffers=False)",
     "pass"),
    ("S²MTS² no enqueue", S, "self._enqueue(mu, ids)", "pass"),
    ("SRC-MT relation term fed student features on both sides", "engine/methods/src_mt.py",
     'relation_consistency(student_out["feat"], teacher_out["feat"],',
     'relation_consistency(student_out["feat"], student_out["feat"],'),
    ("student view switched strong → weak", M, 'student_view: Literal["strong", "weak"] = "strong"',
     'student_view: Literal["strong", "weak"] = "weak"'),
    ("BN buffers never averaged", "engine/methods/ema.py", "        elif buffers:\n            t_buf.lerp_",
     "        elif False:\n            t_buf.lerp_"),
    ("SECL independent geometry for the teacher view", "engine/loaders/paired.py",
     "return self.views._normalise(self.strong_intensity(x, gen)), self.views._normalise(x)",
     ("return self.views._normalise(self.strong_intensity(x, gen)), "
     "self.views._normalise(self._warp(images, None, gen)[0])")),
    ("SECL student-vs-student contrast", E, 's_emb, t_emb = student_out["proj"], teacher_out["proj"]',
     's_emb, t_emb = student_out["proj"], student_out["proj"].detach()'),
    ("SECL pseudo-labels from the student", E, 'targets = pseudo_labels(teacher_out["logits"], size, p.confidence)',
     'targets = pseudo_labels(student_out["logits"].detach(), size, p.confidence)'),
    ("SECL ground truth ignored", E, "targets = torch.where(truth >= 0, truth, targets)", "targets = targets"),
    ("SECL frozen teacher encoder", E,
     "ema_update(self.teacher.encoder, self.student.encoder, rate, buffers=buffers)",
     "ema_update(self.teacher.encoder, self.student.encoder, 1.0, buffers=buffers)"),
]


def _shared_data() -> Path:
    from engine.data.demo import shared_data_dir

    return shared_data_dir()


def _copy_repo(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "mutants", "test-artifacts")
    for name in ("engine", "db", "app", "tests", "assets"):
        if (REPO / name).exists():
            shutil.copytree(REPO / name, dest / name, ignore=ignore)
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")


def run_one(workdir: Path, name: str, rel: str, old: str, new: str) -> dict[str, object]:
    path = workdir / rel
    original = path.read_text()
    if original.count(old) != 1:
        return {"mutant": name, "file": rel, "status": "not applicable (text not found once)", "killed_by": None}
    path.write_text(original.replace(old, new))
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *TESTS],
                              cwd=workdir, capture_output=True, text=True, timeout=900, check=False,
                              env={**os.environ, "MEDSSL_SHARED_DATA": str(_shared_data())})
    finally:
        path.write_text(original)
    failed = [line.split(" ")[1] for line in proc.stdout.splitlines() if line.startswith("FAILED ")]
    return {"mutant": name, "file": rel, "status": "killed" if proc.returncode != 0 else "SURVIVED",
            "killed_by": failed[0] if failed else None, "seconds": round(time.perf_counter() - start, 1)}


def report(result: dict) -> str:
    rows = result["rows"]
    killed = sum(r["status"] == "killed" for r in rows)
    lines = ["# Named mutants (issue 16 §5)", "", f"`{result['command']}`  ", result["machine"], "",
             f"**{killed} of {len(rows)} killed** by `{' '.join(TESTS)}`.", "",
             "| mutant | file | status | first failing test |", "|---|---|---|---|"]
    lines += [f"| {r['mutant']} | `{r['file']}` | {r['status']} | `{r['killed_by'] or '–'}` |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/results/named_mutants"))
    args = parser.parse_args(argv)
    result = {**bench_header("engine.bench.named_mutants", argv), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _copy_repo(workdir)
        for mutant in NAMED:
            result["rows"].append(run_one(workdir, *mutant))
            print(json.dumps(result["rows"][-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "results.md").write_text(report(result))
    print(report(result))
    return 0 if all(r["status"] == "killed" for r in result["rows"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
