# SPDX-License-Identifier: AGPL-3.0-or-later
"""``sfs-bench``: benchmarks of sfs_ros, one module per benchmark.

* :mod:`~sfs_ros.bench.cli`: the command line (subcommands ``pipeline`` (the default), ``clip``,
  ``open-vocab``, ``soak``, ``gpu``);
* :mod:`~sfs_ros.bench.pipeline`: per-stage timings of the node's frame path (``ours``) next to
  the bare networks (``floor``) and the peer pipeline (:mod:`~sfs_ros.bench.peer`);
* :mod:`~sfs_ros.bench.clip`: one CLIP pass, crop vs dense mode;
* :mod:`~sfs_ros.bench.open_vocab`: the closed-set frame rate with the CLIP branch on vs off;
* :mod:`~sfs_ros.bench.soak`: the shipped preset for many frames: memory growth, latency drift
  and frame accounting;
* :mod:`~sfs_ros.bench.gpu`: the GPU check (fp32 / fp16, parity with the CPU);
* :mod:`~sfs_ros.bench.inputs` (frames, model files, configurations),
  :mod:`~sfs_ros.bench.machine` (machine and load description) and
  :mod:`~sfs_ros.bench.report` (the one report writer: Markdown, printing, ``--append``).

Everything comes from the installed package (sample frames from :mod:`sfs_ros.samples`);
nothing is read from a source tree. Nothing is written to a file unless ``--append FILE`` is
given. This module imports nothing, so importing any one benchmark stays cheap.
"""
