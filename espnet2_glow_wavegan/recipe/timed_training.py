"""Train for a wall-clock budget, then end the training as ESPnet would (``tts.sh --scratch_baseline true``).

    python -m espnet2_glow_wavegan.recipe.timed_training --seconds 600 --exp_dir exp/tts_x -- COMMAND ...

COMMAND (stage 7's training job) runs in a process group of its own. If it finishes by itself, its
own end of training stands. At the deadline the whole group is stopped (SIGTERM, then SIGKILL), and
the last whole epochs are averaged into ``train.total_count.ave.pth``, the model stages 7b-10 read,
as ESPnet averages its best-by-step-count (the latest) epochs at max_epoch. ``<exp_dir>/timed_training.json``
records the budget, the seconds used and the epochs averaged. Exit status: COMMAND's when it failed
before the deadline, 3 when the budget ended before the first epoch was saved.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

AVERAGED = 3


def average_last_epochs(exp_dir: Path, count: int = AVERAGED, until: float = None,
                        name: str = "train.total_count.ave.pth") -> list:
    """The last ``count`` whole epochs of ``exp_dir`` averaged into ``name``; returns their numbers.

    Float tensors are averaged, the others (step counters) taken from the newest epoch. A checkpoint
    cut short by the stop is skipped. A single checkpoint of a GAN in its first thousand steps is noisy:
    two checkpoints of one WaveGAN run 8 minutes apart copy-synthesised at MCD 13.3 and 10.5 dB.
    ``until`` (a time stamp): only the epochs written by then (a point of a learning curve). Under
    ESPnet's own name the average is ``train.total_count.ave_<n>best.pth`` with the name linked to it.
    """
    import torch

    epochs = []
    for path in sorted(exp_dir.glob("*epoch.pth"), key=lambda p: -int(p.name[: -len("epoch.pth")])):
        if until is not None and path.stat().st_mtime > until:
            continue
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # cut short by the stop
            continue
        epochs.append((int(path.name[: -len("epoch.pth")]), state))
        if len(epochs) == count:
            break
    if not epochs:
        raise RuntimeError(f"{exp_dir}: no epoch finished within the budget; raise the budget")
    numbers, states = zip(*reversed(epochs))
    average = {k: sum(s[k] for s in states) / len(states) if states[-1][k].is_floating_point() else states[-1][k]
               for k in states[-1]}
    if name != "train.total_count.ave.pth":
        torch.save(average, exp_dir / name)
        return list(numbers)
    target = f"train.total_count.ave_{len(states)}best.pth"
    torch.save(average, exp_dir / target)
    link = exp_dir / name
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)
    return list(numbers)


def run_until(command: list, seconds: float, grace: float = 30.0) -> tuple:
    """``command`` in its own process group, stopped at ``seconds``; returns (exit status, seconds, stopped)."""
    start = time.monotonic()
    proc = subprocess.Popen(command, start_new_session=True)
    try:
        return proc.wait(timeout=max(seconds, 0)), time.monotonic() - start, False
    except subprocess.TimeoutExpired:
        pass
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait()
    return proc.returncode, time.monotonic() - start, True


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv:
        sys.exit("timed_training: give the training command after --")
    command, argv = argv[argv.index("--") + 1:], argv[: argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, required=True, help="the wall-clock budget")
    parser.add_argument("--exp_dir", type=Path, required=True)
    parser.add_argument("--average", type=int, default=AVERAGED, help="how many of the last epochs to average")
    args = parser.parse_args(argv)
    if not command:
        sys.exit("timed_training: the training command after -- is empty")
    status, seconds, stopped = run_until(command, args.seconds)
    record = dict(budget_seconds=args.seconds, seconds=round(seconds, 1), stopped_at_deadline=stopped)
    if not stopped and status:
        sys.exit(status)
    if stopped:
        try:
            record["averaged_epochs"] = average_last_epochs(args.exp_dir, args.average)
        except RuntimeError:
            print(f"timed_training: {args.exp_dir}: the budget of {args.seconds:.0f} s ended before the first epoch "
                  "was saved; give it shorter epochs (num_iters_per_epoch) or more time", file=sys.stderr)
            sys.exit(3)
    args.exp_dir.mkdir(parents=True, exist_ok=True)
    (args.exp_dir / "timed_training.json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"timed_training: {args.exp_dir}: {seconds:.0f} s of {args.seconds:.0f} s"
          + (f", epochs {record['averaged_epochs']} averaged" if stopped else ", finished by itself"), file=sys.stderr)


if __name__ == "__main__":
    main()
