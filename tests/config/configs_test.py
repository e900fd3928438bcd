#!/usr/bin/env python3
"""Checks every configs/*.ini (issue 7: one config per target, opening with its launch command and
explaining every knob). ctest runs it with the venv python; it needs only the standard library:

  configs_test.py DTUNE_BINARY SOURCE_DIR [CONFIGS_DIR]

For each file: `dtune config --config FILE` accepts it and resolves every key to the file's value;
every `key = value` line has a comment directly above it or above its group of keys (no blank
line or section header in between); the opening comment block holds a launch command for this
very file. The recipe config must hold the Python recipe's exact values (RECIPE below).
"""
import configparser
import glob
import os
import re
import subprocess
import sys
import unittest

DTUNE = os.path.abspath(sys.argv[1])
SRC = os.path.abspath(sys.argv[2])
CONFIGS = os.path.abspath(sys.argv[3]) if len(sys.argv) > 3 else os.path.join(SRC, "configs")

# The Python recipe (transformers + TRL SFTTrainer + PEFT), as configs/ must reproduce it.
RECIPE_FILE = "deepseek_r1_distill_llama8b_recipe.ini"
RECIPE = {
    ("lora", "r"): 4,
    ("lora", "alpha"): 16.0,
    ("lora", "dropout"): 0.1,
    ("lora", "target_modules"): ["q_proj", "v_proj"],
    ("lora", "use_rslora"): False,
    ("data", "micro_batch_size"): 2,
    ("data", "packing"): False,
    ("train", "precision"): "fp16",
    ("train", "device"): "cuda",
    ("train", "epochs"): 1,
    ("train", "max_steps"): -1,
    ("train", "gradient_accumulation_steps"): 4,
    ("train", "learning_rate"): 1e-4,
    ("train", "weight_decay"): 0.01,
    ("train", "warmup_ratio"): 0.03,
    ("train", "warmup_steps"): 0,
    ("train", "lr_scheduler"): "linear",
    ("train", "max_grad_norm"): 0.3,
    ("train", "gradient_checkpointing"): True,
    ("generate", "enabled"): True,
    ("generate", "prompt_template"): "recipe",
    ("generate", "max_new_tokens"): 512,
    ("generate", "do_sample"): True,
    ("generate", "temperature"): 0.6,
    ("generate", "top_p"): 0.95,
    ("generate", "repetition_penalty"): 1.15,
}
LAUNCH = re.compile(r"(sbatch slurm/finetune\.sh|launch/train_local\.sh|mpirun .*--config) +(\S+)")
BOOLS = {"true": True, "yes": True, "on": True, "1": True,
         "false": False, "no": False, "off": False, "0": False}


def read_ini(text):
    """INI text -> ConfigParser, as dtune reads it: '#' comments, no interpolation, keys as written."""
    p = configparser.ConfigParser(interpolation=None, comment_prefixes=("#",), strict=True)
    p.optionxform = str
    p.read_string(text)
    return p


def typed(value, like):
    """value (a string from an INI file) converted to the type of `like`."""
    if isinstance(like, bool):
        return BOOLS[value.strip().lower()]
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    if isinstance(like, list):
        return [x.strip() for x in value.split(",") if x.strip()]
    return value.strip()


def same_value(key, written, resolved):
    """True when dtune's resolved value is the one written in the file."""
    if resolved in ("true", "false"):
        return BOOLS.get(written.strip().lower()) == (resolved == "true")
    if key == "target_modules":
        return typed(written, []) == typed(resolved, [])
    try:
        return float(written) == float(resolved)
    except ValueError:
        return written.strip() == resolved.strip()


def uncommented_keys(lines):
    """1-based numbers of `key = value` lines with no comment above them or above their group."""
    bad, covered = [], False
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if not s or s.startswith("["):
            covered = False
        elif s.startswith("#"):
            covered = True
        elif not covered:
            bad.append(n)
    return bad


def opening_comment(lines):
    """The comment block the file opens with: its lines up to the first that is neither blank nor a
    comment; empty when the first line is not a comment."""
    block = []
    for line in lines:
        s = line.strip()
        if s and not s.startswith("#"):
            break
        block.append(s)
    return block if lines and lines[0].startswith("#") else []


def section_comments(lines, section):
    """The comment lines inside [section]."""
    out, inside = [], False
    for line in lines:
        s = line.strip()
        if s.startswith("["):
            inside = s == f"[{section}]"
        elif inside and s.startswith("#"):
            out.append(s)
    return out


def comment_above(lines, key):
    """The comment lines directly above the first `key =` line."""
    for n, line in enumerate(lines):
        if re.match(rf"\s*{re.escape(key)}\s*=", line):
            out, k = [], n - 1
            while k >= 0 and lines[k].strip().startswith("#"):
                out.insert(0, lines[k].strip())
                k -= 1
            return out
    return []


class ConfigsTest(unittest.TestCase):
    def setUp(self):
        self.files = sorted(glob.glob(os.path.join(CONFIGS, "*.ini")))
        self.assertTrue(self.files, f"no *.ini in {CONFIGS}")

    def resolve(self, path):
        r = subprocess.run([DTUNE, "config", "--config", path], cwd=SRC, capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, f"dtune config --config {path} failed:\n{r.stderr}")
        return read_ini(r.stdout)

    def test_dtune_config_accepts_and_resolves_each_file(self):
        for path in self.files:
            with self.subTest(config=os.path.basename(path)):
                resolved = self.resolve(path)
                with open(path, encoding="utf-8") as f:
                    written = read_ini(f.read())
                for section in written.sections():
                    for key, value in written.items(section):
                        got = resolved.get(section, key)
                        self.assertTrue(same_value(key, value, got),
                                        f"{path}: [{section}] {key} = {value!r} resolves to {got!r}")

    def test_every_key_has_a_comment(self):
        for path in self.files:
            with self.subTest(config=os.path.basename(path)):
                with open(path, encoding="utf-8") as f:
                    lines = f.read().splitlines()
                bad = [f"  line {n}: {lines[n - 1].strip()}" for n in uncommented_keys(lines)]
                if bad:
                    self.fail(f"{path}: keys with no comment line above them or above their group:\n"
                              + "\n".join(bad))

    def test_file_opens_with_its_launch_command(self):
        for path in self.files:
            name = os.path.basename(path)
            with self.subTest(config=name):
                with open(path, encoding="utf-8") as f:
                    header = opening_comment(f.read().splitlines())
                self.assertTrue(header, f"{path}: must open with a comment block")
                targets = [m.group(2) for line in header for m in [LAUNCH.search(line)] if m]
                self.assertIn(f"configs/{name}", targets,
                              f"{path}: the opening comment block must hold the command that launches "
                              f"this file (sbatch slurm/finetune.sh, launch/train_local.sh or mpirun "
                              f"... --config, followed by configs/{name}); found {targets}")

    def test_recipe_config_holds_the_recipe_values(self):
        path = os.path.join(CONFIGS, RECIPE_FILE)
        self.assertTrue(os.path.exists(path), f"{path} is missing")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        written, resolved = read_ini(text), self.resolve(path)
        for (section, key), want in RECIPE.items():
            for origin, ini in (("file", written), ("dtune config", resolved)):
                with self.subTest(option=f"{section}.{key}", origin=origin):
                    self.assertTrue(ini.has_option(section, key), f"{path}: [{section}] {key} is missing")
                    self.assertEqual(typed(ini.get(section, key), want), want,
                                     f"{path} ({origin}): [{section}] {key}")
        # The max length is a pretokenize option; the file must say so where it is set and used.
        lines = text.splitlines()
        header = " ".join(opening_comment(lines))
        for option in ("--max-length 1024", "--template recipe"):
            self.assertTrue(option in header, f"{path}: the header's pretokenize command needs {option}")
        self.assertTrue("1024" in " ".join(section_comments(lines, "data")),
                        f"{path}: a comment in [data] must say the rows were cut at 1024 tokens")
        self.assertTrue("per rank" in " ".join(comment_above(lines, "micro_batch_size")),
                        f"{path}: micro_batch_size's comment must say the batch is per rank")

    def test_get_prints_one_value_and_bad_command_lines_exit_2(self):
        """`dtune config --get` (what slurm/submit.sh reads paths with) prints the resolved value;
        a malformed command line is a usage error (exit 2) naming the command, not a crash."""
        path = os.path.join(CONFIGS, RECIPE_FILE)
        r = subprocess.run([DTUNE, "config", "--config", path, "--get", "lora.dropout", "--lora.dropout=0.05"],
                           cwd=SRC, capture_output=True, text=True, timeout=60)
        self.assertEqual((r.returncode, r.stdout), (0, "0.05\n"), r.stderr)
        for cmd in ("config", "train"):
            r = subprocess.run([DTUNE, cmd, "--config"], cwd=SRC, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertTrue(r.stderr.startswith(f"dtune {cmd}: the required argument for option '--config' is missing"),
                            r.stderr)

    def test_memory_prediction_refuses_what_cannot_fit_and_names_the_knob(self):
        """`dtune config --memory` on the 70B config (its model shape: bench/model-configs): on 8 GPUs
        of a node, sharded, it fits an 80 GiB GPU and prints the per-GPU total; unsharded it is
        refused (exit 1) with the knob to turn; the base term is the model's bf16 bytes / 8."""
        import json
        import shutil
        import tempfile
        tmp = tempfile.mkdtemp()
        try:
            shutil.copy(os.path.join(SRC, "bench/model-configs/deepseek-r1-distill-llama-70b.json"),
                        os.path.join(tmp, "config.json"))
            with open(os.path.join(tmp, "config.json")) as f:
                c = json.load(f)
            H, I, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
            hd = H // c["num_attention_heads"]
            q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
            params = 2 * V * H + H + L * (2 * H + 2 * H * q + 2 * H * kv + 3 * H * I)
            cmd = [DTUNE, "config", "--config", os.path.join(CONFIGS, "deepseek_r1_distill_llama70b.ini"), "--memory",
                   "--max-length", "1024", "--world-size", "16", "--ranks-per-node", "8", "--model.path=" + tmp]
            r = subprocess.run(cmd, cwd=SRC, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            base = float(re.search(r"frozen base \(1/8 of it\)\s+([\d.]+) GiB", r.stdout).group(1))
            self.assertAlmostEqual(base, params * 2 / 8 / 2**30, places=2)
            total = float(re.search(r"total per GPU\s+([\d.]+) GiB", r.stdout).group(1))
            self.assertLess(total, 80)
            r = subprocess.run(cmd + ["--train.sharding=none"], cwd=SRC, capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("shard the frozen base over more GPUs", r.stderr)
        finally:
            shutil.rmtree(tmp)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]], verbosity=2)
