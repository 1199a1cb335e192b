#!/usr/bin/env python3
"""Issue 17: what trained LoPA gates and soft prompts look like on the real-data runs (GLUE, glue-lm-8M).

bench/lopa_gates.py measures the same on the synthetic demo, but needs torch and numpy; this machine has
neither, so this script does the arithmetic in plain Python (the heads are small: a few million
multiply-adds per instance). For each run directory (a `lopa train` run of lopa, idpg or pt) and the
first --n rows of the task's dev split, it recomputes the soft prompt from the kept adapter/ exactly as
lopa does in evaluation (no dropout):

  LoPA  u = W2ᵘ tanh(W1ᵘ e + b1ᵘ) + b2ᵘ (m×r),  v = W2ᵛ tanh(W1ᵛ e + b1ᵛ) + b2ᵛ (d×r),
        I = u vᵀ (the gate logits),  G = sigmoid(I),  Z = Z_S ∘ G      (lopa-combine = mul)
        or Z = Z_S + I, no gate                                        (lopa-combine = add)
  IDPG  Z = reshape(W2 tanh(W1 e + b1) + b2)
  PT    Z = the saved prompt

where e is `lopa embed` of the instance's prompt text on the run's encoder (the FM unless `encoder` is
set) with the run's pooling. The first --verify instances are checked against `lopa prompt --adapter RUN
--text T` (the program's own soft prompt); a mismatch stops the script.

Printed per run (one row):
  G<.05 G>.95    share of gate entries (over instances × m × d) below 0.05 / above 0.95
  shut∀ open∀    share of the m × d entries below 0.05 / above 0.95 for every sampled instance: Z_S
                 gets no gradient through a shut entry (∂Z/∂Z_S = G), an open one is a static PT entry
  sd_i G         the across-instance std of a gate entry, averaged over the m × d entries
  std I, max|I|  spread and largest magnitude of the gate logits; |I| > 17 rounds G to 0 or 1 in fp32
  |u| |v|        mean Frobenius norm of the heads' outputs (m×r and d×r)
  |Z| |Z_S|      mean row (virtual token) norm of the soft prompt and of Z_S; the FM's token-embedding
                 row norm is printed once
  sd_i Z/rms Z   across-instance std of a prompt entry over the prompt's rms: how instance-specific the
                 prompt is (0 for PT)
and once per encoder the same ratio for its embeddings e, with their mean pairwise cosine: how much the
instances differ in what the heads are given.

usage: experiments/sweeps/fidelity/real_gates.py [--n 256] [--verify 2] [--lopa build/bin/lopa] RUN_DIR...
Standard library only.
"""
import argparse
import array
import base64
import json
import math
import operator
import os
import struct
import subprocess
import sys
import tempfile

TEMPLATES = {  # experiments/tasks/templates.cpp, default_prompt_template
    "sst2": ("SST-2", "Sentence: {sentence}\nSentiment:"),
    "rte": ("RTE", "Premise: {sentence1}\nHypothesis: {sentence2}\nDoes the premise entail the hypothesis? Answer:"),
    "mrpc": ("MRPC", "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nDo both sentences mean the same thing? Answer:"),
}
ADAPTER = {"lopa": "lopa_model.safetensors", "idpg": "idpg_model.safetensors", "pt": "adapter_model.safetensors"}


class GateError(Exception):
    pass


def read_ini(path):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    return out


def read_safetensors(path, names=None):
    """name -> (shape, flat list of floats); F32 only (lopa writes its adapters in float32)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__" or (names is not None and name not in names):
            continue
        if e["dtype"] != "F32":
            raise GateError(f"{path}: tensor {name} is {e['dtype']}, expected F32")
        b, end = e["data_offsets"]
        a = array.array("f")
        a.frombytes(data[8 + n + b:8 + n + end])
        if sys.byteorder != "little":
            a.byteswap()
        out[name] = (e["shape"], a.tolist())
    return out


def rows_of(shape_flat):
    (rows, cols), flat = shape_flat
    return [flat[i * cols:(i + 1) * cols] for i in range(rows)]


def linear(w_rows, b, x):
    return [sum(map(operator.mul, w, x)) + bi for w, bi in zip(w_rows, b)]


def mlp(w, prefix, x):
    h = [math.tanh(t) for t in linear(rows_of(w[prefix + ".0.weight"]), w[prefix + ".0.bias"][1], x)]
    return linear(rows_of(w[prefix + ".2.weight"]), w[prefix + ".2.bias"][1], h)


def dev_texts(cfg, n):
    task = cfg["task"]
    if task not in TEMPLATES:
        raise GateError(f"task '{task}': no template here (known: {', '.join(TEMPLATES)})")
    folder, template = TEMPLATES[task]
    path = os.path.join(cfg.get("data-dir", "../shared/data"), "glue", folder, "dev.tsv")
    with open(path) as f:
        head = f.readline().rstrip("\n").split("\t")
        texts = []
        for i, line in enumerate(f, 2):
            cols = line.rstrip("\n").split("\t")
            if len(cols) != len(head):
                raise GateError(f"{path}:{i}: {len(cols)} columns, the header has {len(head)}")
            row = dict(zip(head, cols))
            texts.append(template.format(**row))
            if len(texts) >= n:
                break
    return texts


_EMB = {}


def embeddings(lopa, encoder, pooling, texts):
    key = (encoder, pooling, tuple(texts))
    if key not in _EMB:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for t in texts:
                f.write(json.dumps({"text": t}) + "\n")
        try:
            out = subprocess.run([lopa, "embed", "--model", encoder, "--input", f.name, "--pooling", pooling],
                                 check=True, capture_output=True, text=True).stdout
        except subprocess.CalledProcessError as e:
            raise GateError(f"lopa embed --model {encoder}: {e.stderr.strip()}")
        finally:
            os.unlink(f.name)
        _EMB[key] = [json.loads(l)["embedding"] for l in out.splitlines() if l.strip()]
    return _EMB[key]


def program_prompt(lopa, run, text):
    try:
        out = subprocess.run([lopa, "prompt", "--adapter", run, "--text", text], check=True, capture_output=True,
                             text=True).stdout
    except subprocess.CalledProcessError as e:
        raise GateError(f"lopa prompt --adapter {run}: {e.stderr.strip()}")
    a = array.array("f")
    a.frombytes(base64.b64decode(json.loads(out)["soft_prompt"]))
    return a.tolist()


def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")


def row_norm(flat, d):
    return mean([math.sqrt(sum(t * t for t in flat[i:i + d])) for i in range(0, len(flat), d)])


def across_instance_sd(zs):
    """Mean over entries of the across-instance (population) std."""
    n = len(zs)
    sds = []
    for vals in zip(*zs):
        mu = sum(vals) / n
        sds.append(math.sqrt(max(sum(v * v for v in vals) / n - mu * mu, 0.0)))
    return mean(sds)


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def analyse(run, lopa, n, verify):
    cfg = read_ini(os.path.join(run, "config.ini"))
    method = cfg.get("method", "")
    if method not in ADAPTER:
        raise GateError(f"{run}/config.ini: method '{method}' has no soft prompt (lopa, idpg, pt)")
    w = read_safetensors(os.path.join(run, "adapter", ADAPTER[method]))
    with open(os.path.join(run, "adapter", {"lopa": "lopa_config.json", "idpg": "idpg_config.json",
                                            "pt": "adapter_config.json"}[method])) as f:
        acfg = json.load(f)
    texts = dev_texts(cfg, n)
    s = {"run": os.path.basename(run.rstrip("/")), "method": method, "lr": cfg.get("lr"),
         "rank": cfg.get("rank", "") if method == "lopa" else "", "n": len(texts)}
    if method == "pt":
        (m, d), zflat = w["prompt_embeddings"]
        s.update(z_norm=row_norm(zflat, d), inst=0.0)
        return s, cfg
    e = embeddings(lopa, cfg.get("encoder") or cfg["model"], cfg.get("encoder-pooling", "auto"), texts)
    zs_all, gs, logits, u_norms, v_norms = [], [], [], [], []
    if method == "idpg":
        m, d = acfg["num_virtual_tokens"], acfg["token_dim"]
        for x in e:
            zs_all.append(mlp(w, "head", x))
    else:
        combine = acfg.get("combine", "mul")
        if combine not in ("mul", "add"):
            raise GateError(f"{run}: lopa combine '{combine}': measured here are mul (the gate) and add")
        s["combine"] = combine
        m, d, r = acfg["num_virtual_tokens"], acfg["token_dim"], acfg["rank"]
        zshared = w["z_s"][1]
        for x in e:
            u = mlp(w, "row_head", x)   # m×r, row-major
            v = mlp(w, "col_head", x)   # d×r
            u_norms.append(math.sqrt(sum(t * t for t in u)))
            v_norms.append(math.sqrt(sum(t * t for t in v)))
            ur = [u[i * r:(i + 1) * r] for i in range(m)]
            vr = [v[j * r:(j + 1) * r] for j in range(d)]
            inst = [sum(map(operator.mul, ui, vj)) for ui in ur for vj in vr]
            logits.append(inst)
            if combine == "add":  # Z = Z_S + u vᵀ: no gate
                zs_all.append([a + b for a, b in zip(zshared, inst)])
                continue
            g = [sigmoid(t) for t in inst]
            gs.append(g)
            zs_all.append([a * b for a, b in zip(zshared, g)])
        s["zs_norm"] = row_norm(zshared, d)
    for i in range(min(verify, len(texts))):
        ref = program_prompt(lopa, run, texts[i])
        if len(ref) != len(zs_all[i]):
            raise GateError(f"{run}: `lopa prompt` gave {len(ref)} values, recomputed {len(zs_all[i])}")
        err = max(abs(a - b) for a, b in zip(ref, zs_all[i]))
        scale = max(1.0, max(abs(a) for a in ref))
        if err > 1e-4 * scale:
            raise GateError(f"{run}: recomputed soft prompt differs from `lopa prompt` on dev row {i} by {err:.3g}")
    s["verified"] = min(verify, len(texts))
    rms = math.sqrt(mean([t * t for z in zs_all for t in z]))
    s["z_norm"] = mean([row_norm(z, d) for z in zs_all])
    s["inst"] = across_instance_sd(zs_all) / rms if rms > 0 else float("nan")
    if logits:
        flat_i = [t for i in logits for t in i]
        mu = mean(flat_i)
        s["i_std"] = math.sqrt(mean([(t - mu) ** 2 for t in flat_i]))
        s["i_max"] = max(abs(t) for t in flat_i)
        s["u_norm"], s["v_norm"] = mean(u_norms), mean(v_norms)
    if gs:
        flat_g = [t for g in gs for t in g]
        s["g_lo"] = mean([1.0 if t < 0.05 else 0.0 for t in flat_g])
        s["g_hi"] = mean([1.0 if t > 0.95 else 0.0 for t in flat_g])
        cols = list(zip(*gs))
        s["shut_all"] = mean([1.0 if max(c) < 0.05 else 0.0 for c in cols])
        s["open_all"] = mean([1.0 if min(c) > 0.95 else 0.0 for c in cols])
        s["g_sd"] = across_instance_sd(gs)
        s["i_fp32"] = mean([1.0 if abs(t) > 17 else 0.0 for t in flat_i])
    return s, cfg


def fmt(x, spec):
    return "" if x is None or x == "" else format(x, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--n", type=int, default=256, help="dev rows (the first N)")
    ap.add_argument("--verify", type=int, default=2, help="instances checked against `lopa prompt`")
    ap.add_argument("--lopa", default="build/bin/lopa")
    ap.add_argument("--json", help="also write the rows as JSON lines here")
    a = ap.parse_args()
    rows, fms = [], {}
    try:
        for run in a.runs:
            s, cfg = analyse(run, a.lopa, a.n, a.verify)
            rows.append(s)
            fm = cfg["model"]
            if fm not in fms:
                emb = read_safetensors(os.path.join(fm, "model.safetensors"), {"model.embed_tokens.weight"})
                (_, d), flat = emb["model.embed_tokens.weight"]
                fms[fm] = row_norm(flat, d)
            print(f"{s['run']}: done", file=sys.stderr)
    except (GateError, OSError, KeyError, ValueError) as e:
        sys.exit(f"real_gates.py: {e}")
    for fm, nrm in fms.items():
        print(f"FM {fm}: token-embedding row norm {nrm:.2f} (mean over the vocabulary)")
    for (enc, pooling, texts), e in _EMB.items():
        rms = math.sqrt(mean([t * t for x in e for t in x]))
        norms = [math.sqrt(sum(t * t for t in x)) for x in e]
        cos = [sum(map(operator.mul, e[i], e[j])) / (norms[i] * norms[j])
               for i in range(len(e)) for j in range(i + 1, len(e))]
        print(f"encoder {enc} ({pooling} pooling), {len(e)} dev rows: sd_i e / rms e {across_instance_sd(e) / rms:.3f}, "
              f"mean cosine between two instances {mean(cos):.3f}, |e| {mean(norms):.1f}")
    print("| method | r | combine | lr | n | G<.05 | G>.95 | shut∀ | open∀ | sd_i G | std I | max\\|I\\| | \\|I\\|>17 "
          "| \\|u\\| | \\|v\\| | \\|Z\\| | \\|Z_S\\| | sd_i Z / rms Z |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in rows:
        g = lambda k, f: fmt(s.get(k), f)  # noqa: E731
        print(f"| {s['method']} | {s['rank']} | {s.get('combine', '')} | {s['lr']} | {s['n']} | {g('g_lo', '.2f')} | {g('g_hi', '.2f')} "
              f"| {g('shut_all', '.2f')} | {g('open_all', '.2f')} | {g('g_sd', '.3f')} | {g('i_std', '.3g')} "
              f"| {g('i_max', '.3g')} | {g('i_fp32', '.2f')} | {g('u_norm', '.1f')} | {g('v_norm', '.1f')} "
              f"| {g('z_norm', '.2f')} | {g('zs_norm', '.2f')} | {g('inst', '.3f')} |")
    if a.json:
        with open(a.json, "w") as f:
            for s in rows:
                f.write(json.dumps(s) + "\n")


if __name__ == "__main__":
    main()
