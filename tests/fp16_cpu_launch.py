"""`python tests/fp16_cpu_launch.py ARGS` = `sgan ARGS` as on a CPU with native float16 (the amx CPU
profile, sgan.cpu_profiles: `--precision fp16` trains; torch's CPU float16 autocast is emulated where
the real CPU lacks it, correct but slow), for the multi-process fp16 tests, whatever the session's
profile. SGAN_TEST_INF_RANK=r:k puts an inf into rank r's D gradient at step k, before the
all-reduce: every rank must then skip that D step alike."""

from __future__ import annotations

import os

os.environ["SGAN_CPU_PROFILE"] = "amx"

if os.environ.get("SGAN_TEST_INF_RANK"):
    from sgan.train.loop import Trainer

    rank, step = (int(v) for v in os.environ["SGAN_TEST_INF_RANK"].split(":"))
    reduce = Trainer._reduce_grads

    def poisoned(self, module, extra=None):
        if self.info.rank == rank and self.c.step == step and module is self.D:
            next(p for p in module.parameters() if p.grad is not None).grad.view(-1)[0] = float("inf")
        return reduce(self, module, extra)

    Trainer._reduce_grads = poisoned

from sgan.cli import main  # noqa: E402

main()
