#!/usr/bin/env python3
"""End-to-end tests of `dtune train` under mpirun on CPU (fp32), on a tiny random Llama with the
SmolLM2 tokenizer and the project's sample medical set. ctest runs this with the venv python:

  train_e2e_test.py DTUNE_BINARY SOURCE_DIR [test names...]

Each test states its tolerance. The oracle for the interop test is transformers + peft.
"""
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

DTUNE = os.path.abspath(sys.argv[1])
SRC = os.path.abspath(sys.argv[2])
PY = sys.executable
WORK = tempfile.mkdtemp(prefix="dtune_e2e_")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
MODEL = os.path.join(WORK, "tiny_llama")
QWEN_TIED = os.path.join(WORK, "tiny_qwen2_tied")
DATA = os.path.join(WORK, "medical.h5")


def sh(cmd, timeout=600, check=True, **kw):
    p = subprocess.run(cmd, env=ENV, timeout=timeout, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}")
    return p


def mpirun(np_, args, **kw):
    return sh(["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(np_), DTUNE, "train"] + args, **kw)


def base_args(out, micro, extra=(), tensorboard=False):
    return ["--model.path=" + MODEL, "--data.path=" + DATA, "--checkpoint.output_dir=" + out,
            "--train.precision=fp32", "--train.device=cpu", "--train.threads=1",
            "--data.micro_batch_size=" + str(micro), "--train.gradient_accumulation_steps=2",
            "--train.learning_rate=2e-3", "--train.warmup_steps=1", "--train.max_grad_norm=1.0",
            "--lora.dropout=0", "--lora.target_modules=q_proj,k_proj,v_proj,o_proj",
            "--train.gradient_checkpointing=false", "--generate.enabled=false",
            "--log.progress=lines", "--log.tensorboard=" + str(tensorboard).lower()] + list(extra)


def losses(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(l) for l in f]
    return [r["loss"] for r in rows if r["kind"] == "train"], [r for r in rows if r["kind"] == "eval"]


def adapter(path):
    from safetensors.numpy import load_file
    return load_file(os.path.join(path, "adapter_model.safetensors"))


def tensorboard_scalars(out):
    """{tag: [(step, value), ...]} of out/tb as TensorBoard reads it (all events, no sampling)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(os.path.join(out, "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def read_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:  # the process ended meanwhile
        return ""


def rel_close(a, b, rtol):
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-12)


def setUpModule():
    sh([PY, os.path.join(SRC, "scripts/make_tiny_model.py"), "--arch", "llama", "--untied", "--seed", "3",
        "--tokenizer", os.path.join(SRC, "models/SmolLM2-135M-Instruct"), "--output", MODEL])
    sh([DTUNE, "pretokenize", "--tokenizer", MODEL, "--input", os.path.join(SRC, "data/medical_sample.json"),
        "--output", DATA, "--max-length", "160", "--eval-fraction", "0.15", "--seed", "1"])


def tiny_qwen2_tied():
    """A tied tiny Qwen2 (q/k/v biases) with the same tokenizer, made on first use."""
    if not os.path.isdir(QWEN_TIED):
        sh([PY, os.path.join(SRC, "scripts/make_tiny_model.py"), "--arch", "qwen2", "--tied", "--seed", "4",
            "--tokenizer", os.path.join(SRC, "models/SmolLM2-135M-Instruct"), "--output", QWEN_TIED])
    return QWEN_TIED


def tearDownModule():
    shutil.rmtree(WORK, ignore_errors=True)


class TrainE2E(unittest.TestCase):
    def test_equivalence_across_rank_counts(self):
        """-np 1 x 4, -np 2 x 2, -np 4 x 1 rows: same global batches, so per-step losses and final
        adapters agree to 1e-5 relative (only the all-reduce summation order differs)."""
        runs = {}
        for np_, micro in ((1, 4), (2, 2), (4, 1)):
            out = os.path.join(WORK, f"eq_np{np_}")
            mpirun(np_, base_args(out, micro, ["--train.max_steps=4"]))
            runs[np_] = (losses(out)[0], adapter(os.path.join(out, "adapter")))
        ref_losses, ref_adapter = runs[1]
        self.assertEqual(len(ref_losses), 4)
        for np_ in (2, 4):
            got_losses, got_adapter = runs[np_]
            for i, (a, b) in enumerate(zip(ref_losses, got_losses)):
                self.assertTrue(rel_close(a, b, 1e-5), f"np{np_} step {i + 1}: {a} vs {b}")
            for k, v in ref_adapter.items():
                diff = abs(got_adapter[k] - v).max()
                scale = max(abs(v).max(), 1e-6)
                self.assertLessEqual(diff / scale, 1e-5, f"np{np_} {k}: rel diff {diff / scale}")

    def test_resume_is_exact(self):
        """Stop after step 3 (a checkpoint), resume, and every later loss equals the
        uninterrupted run's exactly (fp32 CPU is deterministic). The first run got to step 6, so
        metrics.jsonl and TensorBoard hold steps 4..6 twice unless the resumed run drops them:
        both must read one value per step, the uninterrupted run's."""
        full = os.path.join(WORK, "resume_full")
        mpirun(2, base_args(full, 2, ["--train.max_steps=6", "--lora.dropout=0.1"], tensorboard=True))
        part = os.path.join(WORK, "resume_part")
        mpirun(2, base_args(part, 2, ["--train.max_steps=6", "--lora.dropout=0.1", "--checkpoint.save_every=3",
                                      "--checkpoint.keep_last=5"], tensorboard=True))
        # Drop the checkpoint and adapter after step 3 (as if it crashed there), resume from checkpoint-3.
        shutil.rmtree(os.path.join(part, "checkpoint-6"))
        shutil.rmtree(os.path.join(part, "adapter"))
        time.sleep(1.1)  # the resumed run's events file gets its own name (unix seconds)
        mpirun(2, base_args(part, 2, ["--train.max_steps=6", "--lora.dropout=0.1", "--checkpoint.resume=latest"],
                            tensorboard=True))
        a, b = losses(full)[0], losses(part)[0]
        self.assertEqual(len(a), 6)
        self.assertEqual(a, b)
        # Resuming the finished run again trains nothing and logs nothing twice.
        with open(os.path.join(part, "metrics.jsonl")) as f:
            before = f.read()
        again = mpirun(2, base_args(part, 2, ["--train.max_steps=6", "--lora.dropout=0.1", "--checkpoint.resume=latest"]))
        self.assertIn("the run had already finished (step 6 of 6)", again.stderr)
        with open(os.path.join(part, "metrics.jsonl")) as f:
            self.assertEqual(f.read(), before)
        for k, v in adapter(os.path.join(full, "adapter")).items():
            self.assertTrue((adapter(os.path.join(part, "adapter"))[k] == v).all(), k)
        self.assertEqual(len(os.listdir(os.path.join(part, "tb"))), 2)
        tb_full, tb_part = tensorboard_scalars(full), tensorboard_scalars(part)
        self.assertEqual(sorted(tb_full), sorted(tb_part))
        self.assertEqual([s for s, _ in tb_part["train/loss"]], [1, 2, 3, 4, 5, 6])
        for tag in tb_full:  # every tag (timings too) at the same steps, each once
            self.assertEqual([s for s, _ in tb_part[tag]], [s for s, _ in tb_full[tag]], tag)
        for (s, x), y in zip(tb_part["train/loss"], a):  # simple_value is float32: 1e-7 relative
            self.assertTrue(rel_close(x, y, 1e-7), f"step {s}: {x} vs {y}")

    def test_resume_on_another_number_of_ranks_trains_every_row_once(self):
        """A 2-rank run (2 rows x 2 micro-steps = 8 rows a step, 40 rows, 2 epochs = 10 steps)
        checkpointed at step 2, mid-epoch, resumes on 4 ranks x 1 micro-step and on 1 rank x 4:
        the same rows per step, so all 10 losses equal the uninterrupted 2-rank run's to 1e-5
        relative (only the summation order differs; dropout 0) and the adapters to 1e-5; each
        epoch reports its 40 rows and all their tokens once (counted from the batches). A resume
        that changes the global batch through the accumulation is refused naming the key."""
        data = os.path.join(WORK, "reshard.h5")
        sh([DTUNE, "pretokenize", "--tokenizer", MODEL, "--input", os.path.join(SRC, "data/medical_sample.json"),
            "--output", data, "--max-length", "160", "--eval-fraction", "0", "--seed", "1", "--no-progress"])

        def args(out, accum, extra=()):
            a = [x for x in base_args(out, 2) if not x.startswith(("--data.path=", "--train.gradient_accumulation"))]
            return a + ["--data.path=" + data, "--train.gradient_accumulation_steps=" + str(accum),
                        "--train.epochs=2"] + list(extra)

        def epochs(out):
            with open(os.path.join(out, "metrics.jsonl")) as f:
                rows = [json.loads(l) for l in f]
            return [(r["epoch"], r["rows"], r["tokens"], r["train_rows"]) for r in rows if r["kind"] == "epoch"]

        full = os.path.join(WORK, "reshard_full")
        mpirun(2, args(full, 2, ["--checkpoint.save_every=2", "--checkpoint.keep_last=10"]))
        ref, ref_epochs = losses(full)[0], epochs(full)
        self.assertEqual(len(ref), 10)
        self.assertEqual([(e, r, n) for e, r, _, n in ref_epochs], [(1, 40, 40), (2, 40, 40)])
        for np_, accum in ((4, 1), (1, 4)):
            out = os.path.join(WORK, f"reshard_np{np_}")
            shutil.copytree(full, out)  # as if the 2-rank run had stopped after its checkpoint at step 2
            for name in os.listdir(out):
                if name == "adapter" or (name.startswith("checkpoint-") and name != "checkpoint-2"):
                    shutil.rmtree(os.path.join(out, name))
            refused = mpirun(np_, args(out, 3, ["--checkpoint.save_every=2", "--checkpoint.keep_last=10",
                                              "--checkpoint.resume=latest"]), check=False)
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("train.gradient_accumulation_steps: 2 in the checkpoint", refused.stderr)
            p = mpirun(np_, args(out, accum, ["--checkpoint.save_every=2", "--checkpoint.keep_last=10",
                                              "--checkpoint.resume=latest"]))
            self.assertIn("was written by 2 ranks and this run has " + str(np_), p.stderr)
            got = losses(out)[0]
            self.assertEqual(len(got), 10, f"np{np_}")
            for i, (a, b) in enumerate(zip(ref, got)):
                self.assertTrue(rel_close(a, b, 1e-5), f"np{np_} step {i + 1}: {a} vs {b}")
            self.assertEqual(epochs(out), ref_epochs, f"np{np_}")
            want, have = adapter(os.path.join(full, "adapter")), adapter(os.path.join(out, "adapter"))
            for k, v in want.items():
                rel = abs(have[k] - v).max() / max(abs(v).max(), 1e-6)
                self.assertLessEqual(rel, 1e-5, f"np{np_} {k}")

    def test_placement_is_logged_and_a_wrong_one_stops_the_job_at_start(self):
        """Rank 0 logs every rank's host, GPU and CPUs. Simulated layouts (DTUNE_TEST_VISIBLE_GPUS
        makes each rank see that GPU list) stop before the model loads, naming the fix: two ranks
        seeing one GPU would share it; one rank seeing two leaves one idle. A one-rank MPI world
        inside a 4-task Slurm step (a wrong srun --mpi plugin) stops naming both counts."""
        out = os.path.join(WORK, "placement")
        ok = mpirun(2, base_args(out, 2, ["--train.max_steps=1"]))
        self.assertRegex(ok.stderr, r"placement \(rank, host, local rank, GPU \(PCI bus id\), CPUs\):\n"
                                    r"  0  \S+  0  cpu  [0-9,-]+\n  1  \S+  1  cpu  [0-9,-]+")
        cases = (
            (2, {"DTUNE_TEST_VISIBLE_GPUS": "0000:01:00.0"}, "ranks 0, 1 on "),
            (1, {"DTUNE_TEST_VISIBLE_GPUS": "0000:01:00.0,0000:02:00.0"}, "idle: 0000:02:00.0"),
            (1, {"SLURM_STEP_NUM_TASKS": "4"}, "Slurm started 4 tasks in this step"),
        )
        for np_, env, want in cases:
            shutil.rmtree(out, ignore_errors=True)
            args = [a.replace("--train.device=cpu", "--train.device=auto") for a in base_args(out, 2)]
            cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(np_)]
            for k in env:
                cmd += ["-x", k]
            p = subprocess.run(cmd + [DTUNE, "train"] + args, env=dict(ENV, **env), timeout=120,
                               capture_output=True, text=True)
            self.assertNotEqual(p.returncode, 0, want)
            self.assertIn(want, p.stderr)
            self.assertNotIn("trainable params", p.stderr, "stopped before the model loads")

    def test_sharded_base_trains_as_unsharded(self):
        """train.sharding: none on 1 rank x 4 rows, full on 2 x 2 and on 4 x 1, hybrid (shard groups
        of 2, train.data_parallel_shard_degree=2) on 4 x 1: the same global batches, so per-step
        losses agree within 1e-6 relative and final adapters within 1e-5 (only summation order
        differs), with gradient checkpointing off and on, for the untied tiny Llama and a tied
        tiny Qwen2. The greedy generation test gives the same answer sharded and unsharded."""
        runs = (("none", 1, 4), ("full", 2, 2), ("full", 4, 1), ("hybrid", 4, 1))
        for model in (MODEL, tiny_qwen2_tied()):
            for ckpt in ("false", "true"):
                got = {}
                for mode, np_, micro in runs:
                    out = os.path.join(WORK, f"shard_{os.path.basename(model)}_{ckpt}_{mode}_np{np_}")
                    extra = ["--train.max_steps=4", "--train.sharding=" + mode, "--model.path=" + model,
                             "--train.gradient_checkpointing=" + ckpt]
                    if mode == "hybrid":
                        extra.append("--train.data_parallel_shard_degree=2")
                    greedy = ckpt == "false" and np_ <= 2
                    if greedy:  # the generation test, greedy: its ids must not depend on sharding
                        extra += ["--generate.enabled=true", "--generate.temperature=0", "--generate.max_new_tokens=12"]
                    p = mpirun(np_, base_args(out, micro, extra))
                    if mode != "none":
                        self.assertIn(f"train.sharding={mode}: the frozen base is split over", p.stderr)
                    answer = None
                    if greedy:
                        with open(os.path.join(out, "generation.txt")) as f:
                            answer = f.read()
                    got[(mode, np_)] = (losses(out)[0], adapter(os.path.join(out, "adapter")), answer)
                ref_losses, ref_adapter, ref_answer = got[("none", 1)]
                self.assertEqual(len(ref_losses), 4)
                for key, (l, a, answer) in got.items():
                    what = f"{os.path.basename(model)} ckpt={ckpt} {key}"
                    for i, (x, y) in enumerate(zip(ref_losses, l)):
                        self.assertTrue(rel_close(x, y, 1e-6), f"{what} step {i + 1}: {x} vs {y}")
                    for k, v in ref_adapter.items():
                        rel = abs(a[k] - v).max() / max(abs(v).max(), 1e-6)
                        self.assertLessEqual(rel, 1e-5, f"{what} {k}: rel diff {rel}")
                    if answer is not None:
                        self.assertEqual(answer, ref_answer, what)

    def test_sharded_resume_is_exact_and_its_adapter_loads_in_peft(self):
        """A sharded run (full, 2 ranks) stopped after its step-3 checkpoint and resumed equals the
        uninterrupted sharded run exactly, and so does its adapter; peft loads that adapter into
        transformers and reproduces dtune's final eval loss to 1e-4 relative."""
        args = ["--train.max_steps=6", "--lora.dropout=0.1", "--train.sharding=full", "--train.eval_every=1000"]
        full = os.path.join(WORK, "shard_resume_full")
        mpirun(2, base_args(full, 2, args))
        part = os.path.join(WORK, "shard_resume_part")
        mpirun(2, base_args(part, 2, args + ["--checkpoint.save_every=3", "--checkpoint.keep_last=5"]))
        shutil.rmtree(os.path.join(part, "checkpoint-6"))
        shutil.rmtree(os.path.join(part, "adapter"))
        mpirun(2, base_args(part, 2, args + ["--checkpoint.resume=latest"]))
        a, b = losses(full)[0], losses(part)[0]
        self.assertEqual(len(a), 6)
        self.assertEqual(a, b)
        for k, v in adapter(os.path.join(full, "adapter")).items():
            self.assertTrue((adapter(os.path.join(part, "adapter"))[k] == v).all(), k)
        final_eval = losses(part)[1][-1]["loss"]
        ref = json.loads(sh([PY, os.path.join(SRC, "scripts/train_oracle.py"), "eval-loss", MODEL,
                             os.path.join(part, "adapter"), DATA]).stdout)
        self.assertTrue(rel_close(ref["adapter"], final_eval, 1e-4), f"peft {ref['adapter']} vs dtune {final_eval}")

    def test_hybrid_group_that_does_not_divide_the_job_is_refused(self):
        """train.data_parallel_shard_degree=3 on 4 ranks: refused at start, naming the option."""
        out = os.path.join(WORK, "shard_bad_group")
        p = mpirun(4, base_args(out, 1, ["--train.max_steps=1", "--train.sharding=hybrid",
                                         "--train.data_parallel_shard_degree=3"]), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("train.data_parallel_shard_degree) does not divide the job's 4 ranks", p.stderr)
        p = mpirun(1, base_args(out, 1, ["--train.max_steps=1", "--train.sharding=full",
                                         "--train.data_parallel_shard_degree=2"]), check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("train.data_parallel_shard_degree", p.stderr)

    def test_learning_and_peft_interop(self):
        """Loss goes down over 3 epochs; the trained adapter's eval loss beats the base model's
        (step-0 eval); and the adapter loaded by peft into transformers gives the eval loss dtune
        reported, to 1e-4 relative (fp32, different kernels and summation order)."""
        out = os.path.join(WORK, "learn")
        mpirun(2, base_args(out, 2, ["--train.epochs=3", "--train.eval_every=1000"]))
        train, evals = losses(out)
        self.assertLess(sum(train[-3:]) / 3, sum(train[:3]) / 3, train)
        final_eval = evals[-1]["loss"]
        ref = json.loads(sh([PY, os.path.join(SRC, "scripts/train_oracle.py"), "eval-loss", MODEL,
                             os.path.join(out, "adapter"), DATA]).stdout)
        self.assertTrue(rel_close(ref["adapter"], final_eval, 1e-4), f"peft {ref['adapter']} vs dtune {final_eval}")
        self.assertLess(ref["adapter"], ref["base"])

    def test_outputs_open_alone_and_a_layers_to_transform_adapter_keeps_its_layers(self):
        """Training on from a peft adapter with layers_to_transform=[0] (lora.init_adapter): the
        final adapter/ and the checkpoint both save layers_to_transform = [0] (PeftModel then
        adapts q_proj and v_proj of layer 0 only, as the tensors say) and the tokenizer files, so AutoTokenizer.from_pretrained(folder) gives
        the base tokenizer's ids and chat template; `dtune merge` output loads with AutoTokenizer
        (same ids) and AutoModelForCausalLM."""
        init = os.path.join(WORK, "init_layers")
        sh([PY, "-c", f"""
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
torch.manual_seed(0)
base = AutoModelForCausalLM.from_pretrained({MODEL!r}, dtype=torch.float32)
m = get_peft_model(base, LoraConfig(r=4, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"],
                                    layers_to_transform=[0]))
with torch.no_grad():
    for n, p in m.named_parameters():
        if "lora_B" in n:
            p.normal_(0.0, 0.02)
m.save_pretrained({init!r})
"""])
        out = os.path.join(WORK, "layers_out")
        args = [a for a in base_args(out, 2) if not a.startswith("--lora.target_modules=")]
        mpirun(1, args + ["--lora.init_adapter=" + init, "--lora.r=4", "--lora.alpha=16",
                          "--lora.target_modules=q_proj,v_proj", "--train.max_steps=2", "--checkpoint.save_every=1"])
        folders = [os.path.join(out, "adapter"), os.path.join(out, "checkpoint-2")]
        merged = os.path.join(WORK, "layers_merged")
        sh([DTUNE, "merge", "--model", MODEL, "--adapter", folders[0], "--output", merged])
        report = json.loads(sh([PY, "-c", f"""
import json, sys, torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
base_tok = AutoTokenizer.from_pretrained({MODEL!r})
text = "A 45-year-old presents with chest pain. What next?"
want = base_tok(text)["input_ids"]
out = {{}}
for d in {folders + [merged]!r}:
    tok = AutoTokenizer.from_pretrained(d)
    out[d] = {{"ids": tok(text)["input_ids"] == want, "chat": tok.chat_template == base_tok.chat_template}}
for d in {folders!r}:
    out[d]["layers"] = json.load(open(d + "/adapter_config.json")).get("layers_to_transform")
    base = AutoModelForCausalLM.from_pretrained({MODEL!r}, dtype=torch.float32)
    m = PeftModel.from_pretrained(base, d)
    out[d]["lora_modules"] = sorted({{n.split(".lora_A")[0] for n, _ in m.named_parameters() if "lora_A" in n}})
merged = AutoModelForCausalLM.from_pretrained({merged!r}, dtype=torch.float32)
out["merged_params"] = sum(p.numel() for p in merged.parameters())
print(json.dumps(out))
"""]).stdout.strip().splitlines()[-1])
        for d in folders + [merged]:
            self.assertTrue(report[d]["ids"], d)
            self.assertTrue(report[d]["chat"], d)
        for d in folders:
            self.assertEqual(report[d]["layers"], [0], d)
            self.assertEqual(report[d]["lora_modules"],
                             ["base_model.model.model.layers.0.self_attn.q_proj",
                              "base_model.model.model.layers.0.self_attn.v_proj"], d)
        self.assertGreater(report["merged_params"], 0)

    def test_preemption_checkpoints_and_resumes(self):
        """SIGUSR1 to every rank (what Slurm's --signal does): the ranks finish the step,
        checkpoint, exit 75; `--resume` then ends with the adapter of an uninterrupted run."""
        args = ["--train.max_steps=8", "--lora.dropout=0.1"]
        full = os.path.join(WORK, "preempt_full")
        mpirun(2, base_args(full, 2, args))
        out = os.path.join(WORK, "preempt")
        cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "2", DTUNE, "train"] + base_args(out, 2, args)
        p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 240
        while time.time() < deadline and not os.path.exists(os.path.join(out, "metrics.jsonl")):
            time.sleep(0.2)
        pids = subprocess.run(["pgrep", "-f", f"checkpoint.output_dir={out}"], capture_output=True, text=True).stdout.split()
        ranks = [int(x) for x in pids if int(x) != p.pid and read_cmdline(int(x)).startswith(DTUNE)]
        self.assertEqual(len(ranks), 2)
        for r in ranks:
            os.kill(r, signal.SIGUSR1)
        _, err = p.communicate(timeout=240)
        self.assertEqual(p.returncode, 75, err[-2000:])
        cks = [d for d in os.listdir(out) if d.startswith("checkpoint-")]
        self.assertEqual(len(cks), 1, cks)
        self.assertLess(int(cks[0].split("-")[1]), 8, "the run finished before the signal arrived")
        mpirun(2, base_args(out, 2, args + ["--checkpoint.resume=latest"]))
        self.assertEqual(losses(full)[0], losses(out)[0])
        ref = adapter(os.path.join(full, "adapter"))
        got = adapter(os.path.join(out, "adapter"))
        for k, v in ref.items():
            self.assertTrue((got[k] == v).all(), k)

    def test_killed_rank_brings_job_down(self):
        """kill -9 one rank mid-run: every rank exits non-zero within 60 s, and the newest complete
        checkpoint still loads (peft opens its adapter)."""
        out = os.path.join(WORK, "fault")
        cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "2", DTUNE, "train"] + \
            base_args(out, 2, ["--train.max_steps=1000", "--checkpoint.save_every=1"])
        err_path = os.path.join(WORK, "fault.stderr")
        with open(err_path, "w") as err:
            p = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=err)
        # Wait until a second checkpoint exists. keep_last rotates old ones away, so look for any
        # checkpoint-N with N >= 2 (a step takes ~0.15 s; checkpoint-2 alone lives ~0.3 s).
        def second_checkpoint():
            return any(d.startswith("checkpoint-") and d.split("-")[1].isdigit() and int(d.split("-")[1]) >= 2
                       for d in (os.listdir(out) if os.path.isdir(out) else []))
        deadline = time.time() + 240
        while time.time() < deadline and p.poll() is None and not second_checkpoint():
            time.sleep(0.2)
        with open(err_path) as err:
            log_tail = err.read()[-3000:]
        self.assertTrue(second_checkpoint() and p.poll() is None,
                        f"no second checkpoint while the job ran (mpirun rc {p.poll()}); its stderr ends:\n{log_tail}")
        pids = subprocess.run(["pgrep", "-f", f"checkpoint.output_dir={out}"], capture_output=True, text=True).stdout.split()
        victims = [int(x) for x in pids if int(x) != p.pid]
        ranks = [v for v in victims if read_cmdline(v).startswith(DTUNE)]
        self.assertTrue(ranks, "no rank process found")
        t0 = time.time()
        os.kill(ranks[-1], signal.SIGKILL)
        rc = p.wait(timeout=90)
        self.assertNotEqual(rc, 0)
        self.assertLess(time.time() - t0, 60)
        cks = sorted(int(d.split("-")[1]) for d in os.listdir(out) if d.startswith("checkpoint-"))
        self.assertTrue(cks)
        sh([PY, os.path.join(SRC, "scripts/train_oracle.py"), "load-adapter", MODEL,
            os.path.join(out, f"checkpoint-{cks[-1]}")])

    def test_stalled_rank_ends_the_job_within_the_collective_timeout(self):
        """Rank 1 stalls outside MPI at the start of step 4 (test hook DTUNE_TEST_STALL_AT_STEP=1:4),
        after checkpoint-3 was written: rank 0's next host collective outlives
        train.collective_timeout (20 s: above any wait of a healthy run on a loaded CI machine,
        such as a checkpoint's fsync), and the job ends non-zero within timeout + 30 s of the
        stall, rank 0's message naming the collective, the step and rank 1 as not arrived.
        checkpoint-3 stays intact: resuming from it ends with the losses and adapter of an
        uninterrupted run (exact: fp32 on CPU)."""
        import threading
        timeout = 20
        args = ["--train.max_steps=6", "--checkpoint.save_every=3", "--lora.dropout=0.1",
                f"--train.collective_timeout={timeout}"]
        out = os.path.join(WORK, "stall")
        cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "2", DTUNE, "train"] + base_args(out, 2, args)
        p = subprocess.Popen(cmd, env=dict(ENV, DTUNE_TEST_STALL_AT_STEP="1:4"), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        lines, stalled_at = [], []

        def read():
            for line in p.stderr:
                if "test hook DTUNE_TEST_STALL_AT_STEP: stalling" in line:
                    stalled_at.append(time.time())
                lines.append(line)
        reader = threading.Thread(target=read)
        reader.start()
        try:
            rc = p.wait(timeout=300)
        finally:
            if p.poll() is None:
                p.kill()
            reader.join(timeout=30)
            p.stderr.close()
        ended = time.time()
        err = "".join(lines)
        self.assertNotEqual(rc, 0, err[-3000:])
        self.assertEqual(len(stalled_at), 1, err[-3000:])
        self.assertLess(ended - stalled_at[0], timeout + 30, err[-3000:])
        self.assertGreater(ended - stalled_at[0], timeout, err[-3000:])
        self.assertIn(f"[rank 0] error: MPI all_reduce_scalar (step 4) did not finish within {timeout} s "
                      "(train.collective_timeout", err)
        self.assertIn("rank 1 has not arrived", err)
        self.assertEqual(sorted(d for d in os.listdir(out) if "checkpoint" in d), ["checkpoint-3"])
        mpirun(2, base_args(out, 2, args + ["--checkpoint.resume=latest"]))
        full = os.path.join(WORK, "stall_ref")
        mpirun(2, base_args(full, 2, args))
        self.assertEqual(losses(out)[0], losses(full)[0])
        ref, got = adapter(os.path.join(full, "adapter")), adapter(os.path.join(out, "adapter"))
        for k, v in ref.items():
            self.assertTrue((got[k] == v).all(), k)

    def test_failed_checkpoint_write_keeps_the_last_one(self):
        """A checkpoint write that fails (here: its staging folder is immutable, as a full or
        read-only disk would fail it) ends the job with an error naming the checkpoint and the
        intact earlier one; no half-written checkpoint is left; after the cause is fixed, resume
        finishes with the losses and adapter of an uninterrupted run, and metrics.jsonl holds each
        step once (the failed run's steps past its checkpoint are replaced)."""
        args = ["--train.max_steps=6", "--checkpoint.save_every=2", "--checkpoint.keep_last=5", "--lora.dropout=0.1"]
        out = os.path.join(WORK, "ckpt_fail")
        blocker = os.path.join(out, ".tmp-checkpoint-4")
        os.makedirs(blocker)
        if subprocess.run(["chattr", "+i", blocker], capture_output=True).returncode != 0:
            self.skipTest("chattr +i is not supported here (needs ext4/xfs and CAP_LINUX_IMMUTABLE)")
        try:
            p = mpirun(2, base_args(out, 2, args), check=False)
        finally:
            subprocess.run(["chattr", "-i", blocker])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"cannot write checkpoint {out}/checkpoint-4", p.stderr)
        self.assertIn(f"The newest complete checkpoint, {out}/checkpoint-2, is intact", p.stderr)
        self.assertEqual(sorted(d for d in os.listdir(out) if "checkpoint" in d), [".tmp-checkpoint-4", "checkpoint-2"])
        os.rmdir(blocker)  # the staging folder was ours (empty): dtune removed nothing it did not write
        mpirun(2, base_args(out, 2, args + ["--checkpoint.resume=latest"]))
        full = os.path.join(WORK, "ckpt_fail_ref")
        mpirun(2, base_args(full, 2, args))
        self.assertEqual(losses(out)[0], losses(full)[0])  # steps 1..6 once each, exact
        ref, got = adapter(os.path.join(full, "adapter")), adapter(os.path.join(out, "adapter"))
        for k, v in ref.items():
            self.assertTrue((got[k] == v).all(), k)

    def test_one_run_per_output_folder_and_resume_only_as_the_same_run(self):
        """A second job on a folder that a running job uses fails at start naming the first (its
        pid), and the first is untouched; after the first stops (SIGUSR1: checkpoint, exit 75,
        lock released), a fresh run into the folder is refused (it holds checkpoints), and a
        resume with another learning rate is refused naming the key; the same run resumes."""
        out = os.path.join(WORK, "one_folder")
        data = os.path.join(WORK, "one_folder_data.h5")
        shutil.copyfile(DATA, data)
        args = [a for a in base_args(out, 2, ["--train.max_steps=1000", "--checkpoint.save_every=1000"])
                if not a.startswith("--data.path=")] + ["--data.path=" + data]
        cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "2", DTUNE, "train"] + args
        first = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.time() + 240
            while time.time() < deadline and not os.path.exists(os.path.join(out, "metrics.jsonl")):
                time.sleep(0.2)
            with open(os.path.join(out, ".dtune-run.lock")) as f:
                lock = json.load(f)
            second = mpirun(2, args, check=False)
            self.assertNotEqual(second.returncode, 0)
            self.assertIn(f"checkpoint.output_dir {out} is in use by another run (pid {lock['pid']} on {lock['host']}",
                          second.stderr)
            self.assertIsNone(first.poll(), "the first run was disturbed")
            pids = subprocess.run(["pgrep", "-f", f"checkpoint.output_dir={out}"], capture_output=True, text=True).stdout.split()
            for r in [int(x) for x in pids if int(x) != first.pid and read_cmdline(int(x)).startswith(DTUNE)]:
                os.kill(r, signal.SIGUSR1)
            _, err = first.communicate(timeout=240)
        finally:
            if first.poll() is None:
                first.kill()
        self.assertEqual(first.returncode, 75, err[-2000:])
        self.assertFalse(os.path.exists(os.path.join(out, ".dtune-run.lock")))
        ck = [d for d in os.listdir(out) if d.startswith("checkpoint-")]
        self.assertEqual(len(ck), 1)
        fresh = mpirun(2, args, check=False)
        self.assertNotEqual(fresh.returncode, 0)
        self.assertIn(f"already holds {out}/{ck[0]} from an earlier run", fresh.stderr)
        changed = mpirun(2, args + ["--checkpoint.resume=latest", "--train.learning_rate=1e-3"], check=False)
        self.assertNotEqual(changed.returncode, 0)
        self.assertIn("train.learning_rate: 0.002 in the checkpoint, 0.001 now", changed.stderr)
        step = int(ck[0].split("-")[1])
        same = mpirun(2, [a for a in args if not a.startswith("--train.max_steps=")] +
                      [f"--train.max_steps={step + 1}", "--checkpoint.resume=latest", "--train.eval_every=7"],
                      check=False)
        self.assertNotEqual(same.returncode, 0)
        self.assertIn("these keys change what the run computes\n  train.max_steps", same.stderr)  # the schedule
        self.assertNotIn("train.eval_every:", same.stderr)
        # The data file pretokenized again at the same path (another max_length): not the same run.
        sh([DTUNE, "pretokenize", "--tokenizer", MODEL, "--input", os.path.join(SRC, "data/medical_sample.json"),
            "--output", data, "--max-length", "120", "--eval-fraction", "0.15", "--seed", "1"])
        redone = mpirun(2, args + ["--checkpoint.resume=latest"], check=False)
        self.assertNotEqual(redone.returncode, 0)
        self.assertIn(f"data.path {data} is not the file the run was trained on", redone.stderr)
        self.assertIn("max_length: 160 in the checkpoint, 120 now", redone.stderr)

    def precision_args(self, out, precision, steps, extra=()):
        drop = ("--train.precision=", "--train.warmup_steps=", "--lora.target_modules=", "--train.max_grad_norm=")
        return [a for a in base_args(out, 2) if not a.startswith(drop)] + [
            "--train.precision=" + precision, "--train.warmup_steps=0", "--train.warmup_ratio=0",
            "--train.lr_scheduler=constant", "--train.max_grad_norm=0.3", "--lora.target_modules=q_proj,v_proj",
            "--lora.init_adapter=" + self.init_adapter(), "--data.shuffle=false", f"--train.max_steps={steps}"] + list(extra)

    def init_adapter(self):
        path = os.path.join(WORK, "init_adapter")
        if not os.path.exists(path):
            sh([PY, os.path.join(SRC, "scripts/train_oracle.py"), "make-adapter", MODEL, path, "5"])
        return path

    def oracle_steps(self, precision, steps, scale_init):
        return json.loads(sh([PY, os.path.join(SRC, "scripts/train_oracle.py"), "train-steps", MODEL, self.init_adapter(),
                              DATA, precision, str(steps), "2", "2", "2e-3", "0.3", str(scale_init), "2000"]).stdout)

    def test_fp32_bf16_fp16_training_on_cpu_match_transformers_and_peft(self):
        """4 optimizer steps on one rank from one PEFT adapter (random A and B), in fp32, bf16 and
        fp16 on the CPU, against a transformers + peft loop with the base in the training dtype and
        torch.amp.GradScaler("cpu") for fp16: per-step loss within 1e-6 relative (fp32), 2e-5 (fp16)
        and 1e-4 (bf16: 8-bit mantissa; dtune runs the LoRA product in the activation dtype, peft
        in fp32), and the same loss scale after every step."""
        for precision, rtol in (("fp32", 1e-6), ("fp16", 2e-5), ("bf16", 1e-4)):
            out = os.path.join(WORK, "precision_" + precision)
            mpirun(1, self.precision_args(out, precision, 4))
            with open(os.path.join(out, "metrics.jsonl")) as f:
                got = [r for r in map(json.loads, f) if r["kind"] == "train"]
            ref = self.oracle_steps(precision, 4, 65536)
            self.assertEqual(len(got), 4)
            for i, (g, r) in enumerate(zip(got, ref)):
                self.assertTrue(rel_close(g["loss"], r["loss"], rtol), f"{precision} step {i + 1}: {g['loss']} vs {r['loss']}")
                self.assertEqual(g["loss_scale"], r["loss_scale"], f"{precision} step {i + 1}")

    def test_fp16_on_auto_device_without_a_gpu_is_refused(self):
        """train.precision=fp16 (the recipe's default) with train.device=auto on a machine without a
        GPU stops at start naming both options and the fix, as transformers' Trainer refuses fp16
        without a GPU; it never trains in fp16 on the CPU unasked. (This CI machine has no GPU.)"""
        out = os.path.join(WORK, "fp16_auto")
        args = [a for a in base_args(out, 2) if not a.startswith(("--train.precision=", "--train.device="))]
        p = mpirun(1, args + ["--train.precision=fp16", "--train.device=auto"], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("train.precision=fp16 with train.device=auto, but no GPU is visible to this rank", p.stderr)
        self.assertIn("train.precision=fp32", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "metrics.jsonl")))

    def test_fp16_overflow_skips_the_step_on_every_rank_and_halves_the_scale(self):
        """fp16 with train.loss_scale_init = 2^40: every gradient overflows, so each step is skipped
        on both ranks (the adapter stays the initial one) and the scale halves each time, as
        GradScaler does on the same rows; the warning names the step."""
        out = os.path.join(WORK, "fp16_skip")
        args = [a for a in self.precision_args(out, "fp16", 5, ["--train.loss_scale_init=1099511627776"])
                if not a.startswith("--data.micro_batch_size=")] + ["--data.micro_batch_size=1"]
        p = mpirun(2, args)
        with open(os.path.join(out, "metrics.jsonl")) as f:
            got = [r for r in map(json.loads, f) if r["kind"] == "train"]
        ref = self.oracle_steps("fp16", 5, 1099511627776)
        self.assertTrue(all(r["skipped"] for r in ref))
        self.assertEqual([g["loss_scale"] for g in got], [r["loss_scale"] for r in ref])
        self.assertEqual([g["loss_scale"] for g in got], [2.0 ** (39 - i) for i in range(5)])
        for i in range(5):
            self.assertIn(f"step {i + 1}: non-finite gradients, step skipped on every rank", p.stderr)
        init, final = adapter(self.init_adapter()), adapter(os.path.join(out, "adapter"))
        for k, v in init.items():
            self.assertTrue((final[k] == v).all(), f"{k} changed although every step was skipped")

    def test_packing_trains_every_row_once_on_any_number_of_ranks(self):
        """Rows of 8, 20, 8 and 20 tokens (prompts 2, 4, 2, 4), packed into 32, micro-batch 1,
        accumulation 2, no shuffle, 2 epochs. On 2 ranks rank 0's rows fill one packed sequence
        and rank 1's need two: the epoch lasts 2 micro-batches and rank 0 runs an empty one, so
        each epoch is one step over all four rows. Step 1's loss is the base model's loss on the
        four rows by transformers (LoRA B starts at 0; 1e-5 relative: fp32, other kernels); packed
        on 2 ranks, packed on 1 rank and padded on 2 ranks agree per step to 1e-6 relative (only
        the summation order differs); every epoch reports 4 rows and 56 tokens trained."""
        rows_path = os.path.join(WORK, "uneven.jsonl")
        with open(rows_path, "w") as f:
            for p, c in (("x x", " y" * 5), ("x x x x", " y" * 15), ("z z", " w" * 5), ("q q q q", " v" * 15)):
                f.write(json.dumps({"P": p, "C": c}) + "\n")
        template = os.path.join(WORK, "uneven.template")
        with open(template, "w") as f:
            f.write("{P}{@completion}{C}\n")
        data = os.path.join(WORK, "uneven.h5")
        sh([DTUNE, "pretokenize", "--tokenizer", MODEL, "--input", rows_path, "--output", data,
            "--template-file", template, "--eval-fraction", "0", "--no-progress"])
        import h5py
        with h5py.File(data, "r") as f:
            lengths = list(f["train/offsets"][1:] - f["train/offsets"][:-1])
            prompts = list(f["train/prompt_lengths"][:])
        self.assertEqual((lengths, prompts), ([8, 20, 8, 20], [2, 4, 2, 4]), "the case needs these shapes")

        def run(name, np_, packed):
            out = os.path.join(WORK, "uneven_" + name)
            args = [a for a in base_args(out, 1) if not a.startswith(("--data.path=", "--train.warmup_steps="))]
            args += ["--data.path=" + data, "--data.shuffle=false", "--train.epochs=2", "--train.warmup_steps=0",
                     "--data.packing=" + ("true" if packed else "false"), "--data.pack_length=32"]
            mpirun(np_, args)
            with open(os.path.join(out, "metrics.jsonl")) as f:
                epochs = [json.loads(l) for l in f if json.loads(l)["kind"] == "epoch"]
            return losses(out)[0], epochs

        packed2, epochs2 = run("packed_np2", 2, True)
        packed1, _ = run("packed_np1", 1, True)
        padded2, _ = run("padded_np2", 2, False)
        self.assertEqual(len(packed2), 2)
        ref = json.loads(sh([PY, os.path.join(SRC, "scripts/train_oracle.py"), "base-loss", MODEL, data,
                             "train"]).stdout)
        self.assertTrue(rel_close(packed2[0], ref["loss"], 1e-5), f"dtune {packed2[0]} vs transformers {ref['loss']}")
        for other, name in ((packed1, "packed on 1 rank"), (padded2, "padded on 2 ranks")):
            self.assertEqual(len(other), 2)
            for i, (a, b) in enumerate(zip(packed2, other)):
                self.assertTrue(rel_close(a, b, 1e-6), f"step {i + 1}: packed on 2 ranks {a} vs {name} {b}")
        self.assertEqual([(e["epoch"], e["rows"], e["tokens"], e["train_rows"]) for e in epochs2],
                         [(1, 4, 56, 4), (2, 4, 56, 4)])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
