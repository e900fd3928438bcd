#!/usr/bin/env python3
"""The shipped launchers as users run them: launch/train_local.sh on this box, and slurm/*.sh under
a real Slurm (munged, slurmctld and slurmd started on this machine by tests/launch/local_slurm.sh:
one node on localhost, CPUs only). ctest runs this as root with the venv python:

  launch_test.py DTUNE_BINARY SOURCE_DIR [test names...]

The jobs are 2-rank CPU runs of a tiny random Llama with the SmolLM2 tokenizer on the project's
sample medical set, submitted exactly as a user would: slurm/submit.sh (pretokenize job, then the
training job with a dependency) and `sbatch slurm/finetune.sh CONFIG`.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

DTUNE = os.path.abspath(sys.argv[1])
SRC = os.path.abspath(sys.argv[2])
PY = sys.executable
WORK = tempfile.mkdtemp(prefix="dtune_slurm_")
SLURM_DIR = os.path.join(WORK, "slurm")
MODEL = os.path.join(WORK, "tiny_llama")
ENV = dict(os.environ, DTUNE=DTUNE, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", SLURM_CONF=os.path.join(SLURM_DIR, "slurm.conf"))
for k in [k for k in ENV if k.startswith("SLURM_") and k != "SLURM_CONF"]:
    del ENV[k]  # a test started inside a Slurm job must not inherit that job's settings
# Two ranks of one CPU each, whatever the scripts' GPU-cluster headers ask for.
CPU_JOB = ["--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1", "--gpus-per-node=0", "--time=15"]


def sh(cmd, timeout=600, check=True, **kw):
    p = subprocess.run(cmd, env=ENV, timeout=timeout, capture_output=True, text=True, cwd=SRC, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout:\n{p.stdout[-3000:]}\nstderr:\n{p.stderr[-3000:]}")
    return p


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_fields(job_id):
    """scontrol's record of a job as a dict (JobState, ExitCode, Restarts, ...)."""
    out = sh(["scontrol", "show", "job", "-o", str(job_id)]).stdout
    fields = {}
    for tok in out.split():
        if "=" in tok:
            k, v = tok.split("=", 1)
            fields[k] = v
    return fields


def wait_for(job_id, states, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        f = job_fields(job_id)
        if f.get("JobState") in states:
            return f
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} not in {states} after {timeout} s: {job_fields(job_id)}\n{slurm_logs()}")


def slurm_logs():
    text = ""
    for name in ("slurmctld.log", "slurmd.log"):
        with open(os.path.join(SLURM_DIR, name), errors="replace") as f:
            text += f"--- {name} (tail)\n" + "".join(f.readlines()[-40:])
    return text


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def write_config(name, out_dir, data, max_steps):
    """A user's config file: configs/smollm2_lora_demo.ini with this test's model, data, output
    and a short CPU run (INI forbids a key twice in a section, so the lines are replaced)."""
    values = {("model", "path"): MODEL, ("data", "path"): data, ("checkpoint", "output_dir"): out_dir,
              ("train", "max_steps"): max_steps, ("data", "micro_batch_size"): 2,
              ("train", "gradient_accumulation_steps"): 2, ("checkpoint", "save_every"): 3,
              ("train", "eval_every"): 1000, ("log", "progress"): "lines", ("generate", "enabled"): "false",
              ("train", "threads"): 0}  # 0 = the CPUs srun bound the rank to: 1 here
    lines, section = [], ""
    for line in read(os.path.join(SRC, "configs/smollm2_lora_demo.ini")).splitlines():
        s = line.strip()
        if s.startswith("["):
            section = s.strip("[]")
        elif "=" in s and not s.startswith("#"):
            key = s.split("=", 1)[0].strip()
            if (section, key) in values:
                line = f"{key} = {values.pop((section, key))}"
        lines.append(line)
    assert not values, f"configs/smollm2_lora_demo.ini lacks {values}"
    path = os.path.join(WORK, name + ".ini")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def adapter(dir_):
    from safetensors.numpy import load_file
    return load_file(os.path.join(dir_, "adapter", "adapter_model.safetensors"))


def train_losses(out_dir):
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [(r["step"], r["loss"]) for r in map(json.loads, f) if r["kind"] == "train"]


def setUpModule():
    sh(["bash", os.path.join(SRC, "tests/launch/local_slurm.sh"), "start", SLURM_DIR, str(free_port()), str(free_port())],
       timeout=120)
    sh([PY, os.path.join(SRC, "scripts/make_tiny_model.py"), "--arch", "llama", "--untied", "--seed", "3",
        "--tokenizer", os.path.join(SRC, "models/SmolLM2-135M-Instruct"), "--output", MODEL])


def tearDownModule():
    subprocess.run(["scancel", "--full", "--user=root"], env=ENV, capture_output=True)
    subprocess.run(["bash", os.path.join(SRC, "tests/launch/local_slurm.sh"), "stop", SLURM_DIR], env=ENV)
    if not os.environ.get("DTUNE_KEEP_SLURM_WORK"):  # =1 keeps the jobs' files and Slurm's logs
        shutil.rmtree(WORK, ignore_errors=True)


class LocalLaunch(unittest.TestCase):
    def test_train_local_binds_each_cpu_rank_to_its_cores(self):
        """launch/train_local.sh without a GPU: NP CPU ranks under mpirun, each bound to its own
        block of cores, so train.threads = 0 gives each rank exactly those (here: 2 ranks on a
        machine whose cores split evenly, or no binding when there are fewer cores than ranks)."""
        data = os.path.join(WORK, "local.h5")
        out = os.path.join(WORK, "local_out")
        sh([DTUNE, "pretokenize", "--tokenizer", MODEL, "--input", os.path.join(SRC, "data/medical_sample.json"),
            "--output", data, "--max-length", "160", "--eval-fraction", "0.15", "--seed", "1"])
        config = write_config("local", out, data, max_steps=3)
        env = dict(ENV, NP="2", CUDA_VISIBLE_DEVICES="")  # no GPU even on a GPU machine
        p = subprocess.run(["bash", "launch/train_local.sh", config], env=env, cwd=SRC, capture_output=True,
                           text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        cores = len({line for line in subprocess.run(["lscpu", "-p=CORE,SOCKET"], capture_output=True, text=True)
                     .stdout.splitlines() if not line.startswith("#")})
        threads = cores // 2 if cores >= 2 else os.cpu_count() // 2 or 1
        self.assertIn("no GPU visible; 2 CPU ranks (fp32)", p.stderr)
        self.assertIn(f"dtune train: 2 rank(s), mpi communicator, device cpu, {threads} threads/rank", p.stderr)
        self.assertIn("done: 3 steps", p.stderr)
        self.assertEqual([s for s, _ in train_losses(out)], [1, 2, 3])


    def test_a_requeue_loop_stops_at_the_cap_with_the_reason(self):
        """slurm/finetune.sh in a job already requeued DTUNE_MAX_REQUEUES times (SLURM_RESTART_COUNT,
        as Slurm sets it): on the next time-limit warning the ranks still checkpoint and exit 75,
        but the script does not requeue again; it fails, saying why and how to continue."""
        data = os.path.join(WORK, "cap.h5")
        out = os.path.join(WORK, "cap_out")
        sh([DTUNE, "pretokenize", "--tokenizer", MODEL, "--input", os.path.join(SRC, "data/medical_sample.json"),
            "--output", data, "--max-length", "160", "--eval-fraction", "0.15", "--seed", "1"])
        config = write_config("cap", out, data, max_steps=400)
        env = dict(ENV, SLURM_RESTART_COUNT="3", DTUNE_MAX_REQUEUES="3", DTUNE_LAUNCHER="mpirun", SLURM_NTASKS="1",
                   CUDA_VISIBLE_DEVICES="")
        log_path = os.path.join(WORK, "cap.log")
        with open(log_path, "w") as log_file:
            p = subprocess.Popen(["bash", "slurm/finetune.sh", config], env=env, cwd=SRC, stdout=log_file,
                                 stderr=subprocess.STDOUT)
            deadline = time.time() + 300
            while time.time() < deadline and "step 3/" not in read(log_path):
                time.sleep(0.1)
            p.send_signal(signal.SIGUSR1)  # what --signal=B:USR1@300 delivers to the batch script
            rc = p.wait(timeout=300)
        log = read(log_path)
        self.assertEqual(rc, 1, log[-3000:])
        self.assertIn("preempted at step ", log)  # the ranks checkpointed on the warning
        self.assertIn("not requeued: this job was requeued 3 times already (DTUNE_MAX_REQUEUES=3)", log)
        self.assertIn("resubmit with --resume to continue from " + out + "/checkpoint-", log)


class SlurmJobs(unittest.TestCase):
    def test_1_pipeline_pretokenize_then_finetune(self):
        """slurm/submit.sh: the pretokenize job writes data.path, the training job waits for it
        (afterok), runs 2 ranks under mpirun inside the allocation, checkpoints and ends COMPLETED 0:0."""
        data = os.path.join(WORK, "pipeline.h5")
        out = os.path.join(WORK, "pipeline_out")
        config = write_config("pipeline", out, data, max_steps=6)
        env = {"PRETOKENIZE_SBATCH": "--cpus-per-task=2 --time=10 --output=" + os.path.join(WORK, "pre-%j.out"),
               "FINETUNE_SBATCH": " ".join(CPU_JOB + ["--output=" + os.path.join(WORK, "ft-%j.out")])}
        ENV.update(env, DTUNE_LAUNCHER="mpirun")
        try:
            p = sh(["bash", "slurm/submit.sh", config, os.path.join(SRC, "data/medical_sample.json"),
                    "--max-length", "160", "--eval-fraction", "0.15", "--seed", "1"])
        finally:
            for k in list(env) + ["DTUNE_LAUNCHER"]:
                ENV.pop(k)
        ids = [int(line.split()[2].rstrip(":")) for line in p.stdout.splitlines() if line.split()[1] == "job"]
        self.assertEqual(len(ids), 2, p.stdout)
        pre, ft = ids
        f_pre = wait_for(pre, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})
        self.assertEqual((f_pre["JobState"], f_pre["ExitCode"]), ("COMPLETED", "0:0"), read(os.path.join(WORK, f"pre-{pre}.out")))
        self.assertTrue(os.path.exists(data))
        f = wait_for(ft, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})
        log = read(os.path.join(WORK, f"ft-{ft}.out"))
        self.assertEqual((f["JobState"], f["ExitCode"]), ("COMPLETED", "0:0"), log[-3000:])
        # The dependency held the training job back until the data was written.
        self.assertGreaterEqual(f["StartTime"], f_pre["EndTime"])  # ISO timestamps compare as text
        self.assertIn("launcher mpirun", log)
        self.assertIn("dtune train: 2 rank(s), mpi communicator, device cpu, 1 threads/rank", log)
        self.assertIn("done: 6 steps", log)
        self.assertEqual([s for s, _ in train_losses(out)], [1, 2, 3, 4, 5, 6])
        self.assertEqual(sorted(d for d in os.listdir(out) if d.startswith("checkpoint-")), ["checkpoint-3", "checkpoint-6"])
        state = json.loads(read(os.path.join(out, "checkpoint-6", "trainer_state.json")))
        self.assertEqual(state["step"], 6)
        self.assertEqual(len(adapter(out)), 2 * 2 * 2)  # 2 layers x {q,v} x {A,B}

    STEPS = 40
    _reference = None

    def submit(self, name):
        """sbatch slurm/finetune.sh with a 40-step config on the shared data; (job id, output
        folder, log file)."""
        data = os.path.join(WORK, "requeue.h5")
        if not os.path.exists(data):
            sh([DTUNE, "pretokenize", "--tokenizer", MODEL, "--input", os.path.join(SRC, "data/medical_sample.json"),
                "--output", data, "--max-length", "160", "--eval-fraction", "0.15", "--seed", "1"])
        out = os.path.join(WORK, name)
        config = write_config(name, out, data, max_steps=self.STEPS)
        jid = int(sh(["sbatch", "--parsable"] + CPU_JOB + ["--output=" + os.path.join(WORK, name + "-%j.out"),
                                                          "slurm/finetune.sh", config]).stdout.split(";")[0])
        return jid, out, os.path.join(WORK, f"{name}-{jid}.out")

    def reference(self):
        """The uninterrupted run (once per module): its losses and final adapter."""
        if SlurmJobs._reference is None:
            jid, out, log = self.submit("uninterrupted")
            f = wait_for(jid, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})
            self.assertEqual((f["JobState"], f["ExitCode"]), ("COMPLETED", "0:0"), read(log)[-3000:])
            SlurmJobs._reference = (train_losses(out), adapter(out))
        return SlurmJobs._reference

    def interrupt_and_finish(self, name, interrupt, signal_name):
        """Submits, interrupts after step 3 with interrupt(job id), lets the requeued job start,
        and checks it resumed from the checkpoint written at the interruption and ended with the
        uninterrupted run's losses and adapter, bit for bit (same ranks, same data order, the
        dropout RNG restored)."""
        ref_losses, ref_adapter = self.reference()
        jid, out, log_path = self.submit(name)
        deadline = time.time() + 300
        while time.time() < deadline and "step 3/" not in (read(log_path) if os.path.exists(log_path) else ""):
            time.sleep(0.1)
        interrupt(jid)
        f = wait_for(jid, {"PENDING", "COMPLETED", "FAILED", "CANCELLED"})
        requeued_at = time.time()
        self.assertEqual(f["JobState"], "PENDING", read(log_path)[-3000:])
        self.assertEqual(f["Restarts"], "1")
        # Slurm holds a requeued job back for two minutes (BeginTime), and a cluster would start it
        # later still; that hold is what keeps the two allocations of one job id apart. Start it
        # early, but only once they cannot meet: the first allocation's slurmstepd processes are
        # gone (srun's pmix plugin cannot reuse the step's socket before), the node has finished
        # completing the job, and the clock has left the second in which slurmd revoked the job's
        # credential (slurmd compares whole seconds, and a credential from that second is refused:
        # the batch script never starts. A CI run once failed with exactly that symptom).
        deadline = time.time() + 120
        while time.time() < deadline and (
                sh(["pgrep", "-f", f"slurmstepd: \\[{jid}\\."], check=False).stdout.strip()
                or "COMPLETING" in sh(["scontrol", "show", "node", "-o"]).stdout):
            time.sleep(0.2)
        time.sleep(max(0.0, requeued_at + 2.0 - time.time()))
        sh(["scontrol", "update", f"JobId={jid}", "StartTime=now"])
        f = wait_for(jid, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})
        log = read(log_path)
        self.assertEqual((f["JobState"], f["ExitCode"], f["Restarts"]), ("COMPLETED", "0:0", "1"),
                         log[-3000:] + "\n" + slurm_logs())
        self.assertIn(f"{signal_name} at ", log)
        stopped = [line for line in log.splitlines() if line.startswith("preempted at step ")]
        self.assertEqual(len(stopped), 1, log[-3000:])
        stop_step = int(stopped[0].split()[3].rstrip(":"))
        self.assertLess(stop_step, self.STEPS, "the run finished before the interruption")
        self.assertIn(f"resumed from {out}/checkpoint-{stop_step} at step {stop_step}/{self.STEPS}", log)
        self.assertIn(f"done: {self.STEPS} steps", log)
        got_losses = train_losses(out)
        self.assertEqual([s for s, _ in got_losses], list(range(1, self.STEPS + 1)))
        self.assertEqual(got_losses, ref_losses)  # exact
        got = adapter(out)
        self.assertEqual(sorted(ref_adapter), sorted(got))
        for k, v in ref_adapter.items():
            self.assertTrue((got[k] == v).all(), f"{k} differs after the requeue")
        return log

    def test_2_time_limit_warning_requeues_and_resumes(self):
        """The time-limit warning that --signal=B:USR1@300 sends (SIGUSR1 to the batch script):
        the script passes it to the ranks, they checkpoint and exit 75, the script requeues."""
        log = self.interrupt_and_finish("requeued_usr1", lambda j: sh(["scancel", "--signal=USR1", "--batch", str(j)]),
                                        "SIGUSR1")
        self.assertIn("requeued job", log)

    def test_3_preemption_requeue_resumes(self):
        """Requeue by Slurm itself (`scontrol requeue`, what preemption with PreemptMode=REQUEUE
        does): SIGTERM to the script and the ranks, which checkpoint within KillWait; Slurm
        requeues, and the next allocation resumes."""
        self.interrupt_and_finish("requeued_term", lambda j: sh(["scontrol", "requeue", str(j)]), "SIGTERM")
    def test_4_a_fresh_submission_into_an_earlier_run_is_refused(self):
        """sbatch of a config whose output folder holds an earlier run's checkpoints (no --resume,
        not a requeue) fails before the ranks start, naming the checkpoint and both ways out; the
        earlier run's files are untouched."""
        ref_losses, _ = self.reference()
        out = os.path.join(WORK, "uninterrupted")
        before = sorted(os.listdir(out))
        jid, _, log_path = self.submit("uninterrupted")
        f = wait_for(jid, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"})
        log = read(log_path)
        self.assertEqual((f["JobState"], f["ExitCode"]), ("FAILED", "2:0"), log[-3000:])
        self.assertIn(f"checkpoint.output_dir {out} already holds {out}/checkpoint-{self.STEPS}", log)
        self.assertIn("--resume", log)
        self.assertIn("--checkpoint.output_dir=NEW_FOLDER", log)
        self.assertEqual(sorted(os.listdir(out)), before)
        self.assertEqual(train_losses(out), ref_losses)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
