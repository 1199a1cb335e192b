#!/usr/bin/python3
"""Issue 17's diagnosis: what a trained LoPA run's gate and soft prompt look like, next to IDPG and PT.

For each run directory (a `lopa train` run of lopa, idpg or pt) and a sample of instances (the first N
lines of a split's JSONL, default dev), recomputes the soft prompt from the saved adapter/ exactly as
lopa does in evaluation (no dropout):

  LoPA  u = W2ᵘ tanh(W1ᵘ e + b1ᵘ) + b2ᵘ (m×r),  v = W2ᵛ tanh(W1ᵛ e + b1ᵛ) + b2ᵛ (d×r),
        I = u vᵀ (the pre-sigmoid gate logits), G = sigmoid(I), Z = Z_S ∘ G   (lopa-combine = mul)
  IDPG  Z = reshape(W2 tanh(W1 e + b1) + b2)
  PT    Z = the saved prompt (the same for every instance)

where e is the encoder embedding of the instance's prompt text, taken from `lopa embed` on the run's
encoder (the FM itself unless the run set `encoder`) with the run's pooling. The recomputation is
checked against `lopa prompt --adapter RUN --text T` on the first --verify texts of every run (the
program's own soft prompt); a mismatch stops the script.

Reported per run (one line), then per method and learning rate (mean over the runs):
  sat<.05 / sat>.95  fraction of gate entries below 0.05 / above 0.95 (saturation)
  |u| |v| (@0)       mean Frobenius norm of the row head's output u (m×r) and the column head's v (d×r),
                     trained (and at step 0)
  I std@0            std of the gate logits at step 0 (from the step-0 adapter, below)
  I mean / I std     mean and std of the gate logits u vᵀ over instances and entries; max|I| the largest;
  |I|>17             share of the logits beyond ±17, where an fp32 sigmoid is exactly 0 or 1
  off∀ / on∀         fraction of the m×d gate entries closed (< 0.05) for every instance (Z_S gets no
                     gradient there) / open (> 0.95) for every instance (a static, PT-like entry)
  sd_i(G)            the across-instance std of each gate entry, averaged over the m×d entries
  sd_i(Z)/rms(Z)     the across-instance std of each soft-prompt entry, averaged, over the prompt's rms:
                     how instance-specific the prompt is (0: one prompt for all, as PT)
  rel R²             share of the across-instance variance of Z explained by the instance's relation
                     (synth-facts' `relation` field; blank when the split has none); printed also for
                     the encoder embeddings themselves
  |Z| |Z_S| |Z_S0|   mean row (token) norm of the soft prompt, of Z_S, of Z_S at step 0
                     (from RUN/initial/ or --initial-root, see below); the FM's token-embedding row
                     norm is printed once per FM
  drift              ‖Z_S − Z_S0‖ / ‖Z_S0‖
  dev acc / rel-ok   accuracy of the run's predictions.jsonl (its best-dev step) on the sampled ids, and
                     the share of predictions whose value belongs to the asked relation's values

Z_S at step 0: `lopa train --save-initial true` writes RUN/initial/ (the adapter before the first
step). --make-initial DIR reruns each (method, seed, prompt-init, sizes) of the given runs for one
step with save-initial into DIR (a few seconds each), and --initial-root DIR reads them back.

With --ablate, each run is also evaluated (`lopa eval`, dev and test, about a second each) with one
thing scaled at inference: LoPA's Z_S (zs*c) or gate logits (I*c; I*0 sets every gate to 1/2, removing
the instance information), IDPG's / PT's prompt (z*c): how much the trained prompt's scale and the
gate's saturation matter to the frozen FM. LoPA and IDPG runs are also scored with their soft prompt
made instance-independent (evaluated as a PT prompt of the same FM and task): 'mean', one prompt, the
mean over the sampled instances, and 'rel-mean', per relation the mean over its instances (each
instance scored with its relation's prompt; for LoPA Z_S ∘ sigmoid(mean of the gate logits), which
keeps the gates' saturation): how much of the instance-specific prompt is more than a prompt per
relation. Per relation, the accuracy and the share of the commonest predicted value are printed too.

  bench/lopa_gates.py [--split dev] [--n 72] [--lopa build/bin/lopa] [--make-initial DIR]
                      [--initial-root DIR] [--lr METHOD=LR,...] [--ablate] [--json OUT]
                      RUN_DIR... | --root DEMO_OUT
  bench/lopa_gates.py --glue [--n 128] [--make-initial DIR] RUN_DIR...   (GLUE runs, e.g. issue 17's real-data
                      cells: the instances are the first N rows of their task's dev.tsv in lopa's template; no
                      relations, no per-instance accuracy, --ablate not for these)

Only torch, numpy and the standard library (the pure-Python safetensors reader of llama_ref.py).
"""
import argparse
import base64
import collections
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_ref import read_safetensors, write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class GateError(Exception):
    """Bad input (a run directory, a data file): printed as one line, exit status 1."""


def read_ini(path):
    kv = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if "=" in line and not line.startswith("["):
                    k, v = line.split("=", 1)
                    kv[k.strip()] = v.strip()
    except OSError as e:
        raise GateError(f"{path}: cannot read the run config ({e})")
    return kv


def load_run(run):
    cfg = read_ini(os.path.join(run, "config.ini"))
    method = cfg.get("method", "")
    files = {"lopa": ("lopa_config.json", "lopa_model.safetensors"),
             "idpg": ("idpg_config.json", "idpg_model.safetensors"),
             "pt": ("adapter_config.json", "adapter_model.safetensors")}
    if method not in files:
        raise GateError(f"{run}/config.ini: method '{method}' has no soft prompt (lopa, idpg, pt)")
    cj, wf = files[method]
    adir = os.path.join(run, "adapter")
    try:
        with open(os.path.join(adir, cj)) as f:
            acfg = json.load(f)
    except (OSError, ValueError) as e:
        raise GateError(f"{adir}/{cj}: cannot read ({e})")
    w = read_safetensors(os.path.join(adir, wf))
    return {"dir": run, "cfg": cfg, "method": method, "acfg": acfg, "w": w}


def read_split(path, n):
    rows = []
    try:
        with open(path) as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    raise GateError(f"{path}:{i}: not JSON ({e})")
                if "prompt" not in rows[-1]:
                    raise GateError(f"{path}:{i}: no 'prompt' field")
                if n and len(rows) >= n:
                    break
    except OSError as e:
        raise GateError(f"{path}: cannot read ({e})")
    return rows


# lopa's default prompt templates of the GLUE tasks in ../shared/data (experiments/tasks/templates.cpp). A copy that
# drifted from lopa's would show: the soft prompts recomputed from these texts would differ from `lopa prompt`'s.
GLUE = {
    "sst2": ("SST-2", "Sentence: {sentence}\nSentiment:"),
    "rte": ("RTE", "Premise: {sentence1}\nHypothesis: {sentence2}\nDoes the premise entail the hypothesis? Answer:"),
    "mrpc": ("MRPC", "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nDo both sentences mean the same thing? Answer:"),
    "qnli": ("QNLI", "Question: {question}\nSentence: {sentence}\nDoes the sentence answer the question? Answer:"),
}


def glue_rows(runs, n):
    """--glue: the first n rows of the runs' GLUE dev split as {"prompt": text}, in lopa's template."""
    keys = {(r["cfg"].get("task", ""), r["cfg"].get("data-dir", "../shared/data")) for r in runs}
    if len(keys) != 1:
        raise GateError(f"--glue: the runs must share one task and data-dir, got {sorted(keys)}")
    task, data_dir = keys.pop()
    if task not in GLUE:
        raise GateError(f"--glue: task '{task}' has no template here ({', '.join(GLUE)})")
    folder, template = GLUE[task]
    path = os.path.join(data_dir, "glue", folder, "dev.tsv")
    rows = []
    try:
        with open(path) as f:
            head = f.readline().rstrip("\n").split("\t")
            for i, line in enumerate(f, 2):
                cols = line.rstrip("\n").split("\t")
                if len(cols) != len(head):
                    raise GateError(f"{path}:{i}: {len(cols)} columns, the header has {len(head)}")
                rows.append({"prompt": template.format(**dict(zip(head, cols)))})
                if n and len(rows) >= n:
                    break
    except OSError as e:
        raise GateError(f"{path}: cannot read ({e})")
    return rows, path


_EMB = {}


def embeddings(lopa, encoder, pooling, texts):
    key = (encoder, pooling, tuple(texts))
    if key not in _EMB:
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
            for t in texts:
                f.write(json.dumps({"text": t}) + "\n")
            name = f.name
        try:
            out = subprocess.run([lopa, "embed", "--model", encoder, "--input", name, "--pooling", pooling],
                                 check=True, capture_output=True, text=True).stdout
        except subprocess.CalledProcessError as e:
            raise GateError(f"lopa embed --model {encoder}: {e.stderr.strip()}")
        finally:
            os.unlink(name)
        _EMB[key] = torch.tensor([json.loads(l)["embedding"] for l in out.splitlines() if l.strip()])
    return _EMB[key]


def mlp(e, w1, b1, w2, b2):
    return torch.nn.functional.linear(torch.tanh(torch.nn.functional.linear(e, w1, b1)), w2, b2)


def soft_prompts(r, e):
    """Z (N×m×d) and, for LoPA, the gate logits I (N×m×d) and Z_S (the head outputs u, v in r["_uv"])."""
    w, a = r["w"], r["acfg"]
    if r["method"] == "pt":
        z = w["prompt_embeddings"]
        return z.unsqueeze(0).expand(e.shape[0], -1, -1), None, None
    if r["method"] == "idpg":
        m, d = a["num_virtual_tokens"], a["token_dim"]
        return mlp(e, w["head.0.weight"], w["head.0.bias"], w["head.2.weight"], w["head.2.bias"]).view(-1, m, d), None, None
    m, d, rk = a["num_virtual_tokens"], a["token_dim"], a["rank"]
    u = mlp(e, w["row_head.0.weight"], w["row_head.0.bias"], w["row_head.2.weight"], w["row_head.2.bias"]).view(-1, m, rk)
    v = mlp(e, w["col_head.0.weight"], w["col_head.0.bias"], w["col_head.2.weight"], w["col_head.2.bias"]).view(-1, d, rk)
    inst = torch.bmm(u, v.transpose(1, 2))
    r["_uv"] = (u, v)
    zs = w["z_s"]
    comb = a.get("combine", "mul")
    if comb == "mul":
        z = zs * torch.sigmoid(inst)
    elif comb == "add":
        z = zs + inst
    elif comb == "max":
        z = torch.maximum(zs.expand_as(inst), inst)
    else:
        z = torch.cat([zs.expand_as(inst), inst], 1)
    return z, inst, zs


def lopa_prompt(lopa, run, text):
    try:
        out = subprocess.run([lopa, "prompt", "--adapter", run, "--text", text], check=True, capture_output=True,
                             text=True).stdout
    except subprocess.CalledProcessError as e:
        raise GateError(f"lopa prompt --adapter {run}: {e.stderr.strip()}")
    j = json.loads(out)
    z = np.frombuffer(base64.b64decode(j["soft_prompt"]), dtype="<f4").reshape(j["soft_prompt_shape"])
    return torch.from_numpy(z.copy())


def initial_key(r):
    c = r["cfg"]
    return "-".join([r["method"], "s" + c.get("seed", "0"), c.get("prompt-init", "random"),
                     "m" + c.get("num-virtual-tokens", "0"), "r" + c.get("rank", "0"), "h" + c.get("head-dim", "0"),
                     c.get("lopa-combine", "mul")])


def make_initial(lopa, runs, root):
    """One 1-step `lopa train --save-initial true` per (method, seed, init, sizes): RUN/initial/ = step 0."""
    done = set()
    for r in runs:
        if r["method"] == "idpg":
            continue
        k = initial_key(r)
        out = os.path.join(root, k)
        if k in done or os.path.exists(os.path.join(out, "initial")):
            done.add(k)
            continue
        cfg = dict(r["cfg"])
        cfg.update({"max-steps": "1", "save-initial": "true", "eval-every": "0", "eval-split": "dev",
                    "max-eval-examples": "1", "save-every": "0"})
        os.makedirs(root, exist_ok=True)
        ini = os.path.join(root, k + ".ini")
        with open(ini, "w") as f:
            f.write("".join(f"{a} = {b}\n" for a, b in cfg.items()))
        p = subprocess.run([lopa, "train", "--config", ini, "--out", out], capture_output=True, text=True)
        if p.returncode != 0:
            raise GateError(f"lopa train --config {ini}: {p.stderr.strip().splitlines()[-1:] or p.returncode}")
        done.add(k)


def initial_adapter(r, initial_root):
    """The step-0 weights of the run's method (dict), or None."""
    cands = [os.path.join(r["dir"], "initial")]
    if initial_root:
        cands.append(os.path.join(initial_root, initial_key(r), "initial"))
    for d in cands:
        for name in ("lopa_model.safetensors", "adapter_model.safetensors"):
            p = os.path.join(d, name)
            if os.path.exists(p):
                return read_safetensors(p)
    return None


_VOCAB = {}


def vocab_rows(fm):
    if fm not in _VOCAB:
        _VOCAB[fm] = read_safetensors(os.path.join(fm, "model.safetensors"))["model.embed_tokens.weight"].float()
    return _VOCAB[fm]


def relation_r2(z, groups):
    """Share of the across-instance variance of Z (N×…) between the groups' means."""
    if groups is None:
        return float("nan")
    x = z.reshape(z.shape[0], -1).double()
    tot = ((x - x.mean(0)) ** 2).sum()
    if tot <= 0:
        return float("nan")
    between = 0.0
    for g in sorted(set(groups)):
        idx = [i for i, h in enumerate(groups) if h == g]
        between += len(idx) * ((x[idx].mean(0) - x.mean(0)) ** 2).sum()
    return float(between / tot)


def prediction_stats(run, rows, value_relation):
    p = os.path.join(run, "predictions.jsonl")
    if not os.path.exists(p):
        return float("nan"), float("nan")
    pred = {}
    with open(p) as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                pred[j.get("idx")] = j.get("prediction")
    ok = rel = n = 0
    for row in rows:
        if row.get("id") not in pred or "answer" not in row:
            continue
        n += 1
        ok += pred[row["id"]] == row["answer"]
        rel += value_relation.get(pred[row["id"]]) == row.get("relation")
    return (100.0 * ok / n, 100.0 * rel / n) if n else (float("nan"), float("nan"))


def relation_breakdown(run, rows):
    """Per relation: accuracy of predictions.jsonl and the share of its most frequent predicted value (a
    method that falls back on one value per relation, not the person's fact, shows a share near 1)."""
    p = os.path.join(run, "predictions.jsonl")
    if not os.path.exists(p) or not all("relation" in row and "answer" in row for row in rows):
        return {}
    with open(p) as f:
        pred = {j.get("idx"): j.get("prediction") for j in (json.loads(l) for l in f if l.strip())}
    out = {}
    for rel in sorted({row["relation"] for row in rows}):
        rr = [row for row in rows if row["relation"] == rel and row["id"] in pred]
        if rr:
            counts = collections.Counter(pred[row["id"]] for row in rr)
            out[rel] = {"acc": 100.0 * sum(pred[row["id"]] == row["answer"] for row in rr) / len(rr),
                        "top_share": max(counts.values()) / len(rr),
                        "gold_top_share": max(collections.Counter(row["answer"] for row in rr).values()) / len(rr)}
    return out


def relation_table(stats):
    groups = collections.OrderedDict()
    for s in stats:
        if s.get("per_relation"):
            groups.setdefault((s["method"], s.get("init", ""), s.get("rank", ""), s.get("combine", ""), s.get("head_dim", ""),
                               s["lr"]), []).append(s)
    if not groups:
        return ""
    rels = sorted({k for ss in groups.values() for s in ss for k in s["per_relation"]})
    lines = ["| method | init | r | comb | h | lr | runs | " + " | ".join(f"{x}: acc / top-pred share" for x in rels) + " |",
             "|" + "---|" * (7 + len(rels))]
    gold = {}
    for (m, init, rank, comb, h, lr), ss in groups.items():
        cells = []
        for x in rels:
            vals = [s["per_relation"][x] for s in ss if x in s["per_relation"]]
            gold[x] = vals[0]["gold_top_share"] if vals else float("nan")
            cells.append(f"{np.mean([v['acc'] for v in vals]):.1f} / {np.mean([v['top_share'] for v in vals]):.2f}"
                         if vals else "—")
        lines.append(f"| {m} | {init or '—'} | {rank or '—'} | {comb or '—'} | {h or '—'} | {lr} | {len(ss)} | " + " | ".join(cells) + " |")
    lines.append("| gold | | | | | | | " + " | ".join(f"100 / {gold[x]:.2f}" for x in rels) + " |")
    return "\n".join(lines)


def analyse(r, rows, lopa, verify, initial_root, value_relation):
    c = r["cfg"]
    encoder = c.get("encoder") or c["model"]
    pooling = c.get("encoder-pooling", "auto")
    texts = [row["prompt"] for row in rows]
    e = embeddings(lopa, encoder, pooling, texts)
    with torch.no_grad():
        z, inst, zs = soft_prompts(r, e)
    for i in range(min(verify, len(texts))):
        ref = lopa_prompt(lopa, r["dir"], texts[i])
        err = float((ref - z[i]).abs().max())
        if err > 1e-4 * max(1.0, float(ref.abs().max())):
            raise GateError(f"{r['dir']}: recomputed soft prompt differs from `lopa prompt` on '{texts[i]}' by {err:.3g}")
    groups = [row["relation"] for row in rows] if all("relation" in row for row in rows) else None
    rms = float(z.pow(2).mean().sqrt())
    s = {"run": os.path.basename(r["dir"].rstrip("/")), "method": r["method"], "lr": c.get("lr"),
         "seed": c.get("seed"), "init": c.get("prompt-init", "") if r["method"] != "idpg" else "",
         "rank": c.get("rank") if r["method"] == "lopa" else "",
         "combine": c.get("lopa-combine", "mul") if r["method"] == "lopa" else "",
         "head_dim": c.get("head-dim", "0") if r["method"] in ("lopa", "idpg") else "",
         "z_norm": float(z.norm(dim=-1).mean()),
         "inst_rel": float(z.std(0, unbiased=False).mean()) / rms if rms > 0 else float("nan"),
         "rel_r2": relation_r2(z, groups)}
    if inst is not None:
        g = torch.sigmoid(inst)
        u, v = r["_uv"]
        s.update({"u_norm": float(u.flatten(1).norm(dim=1).mean()), "v_norm": float(v.flatten(1).norm(dim=1).mean())})
        s.update({"i_mean": float(inst.mean()), "i_std": float(inst.std(unbiased=False)),
                  "i_absmax": float(inst.abs().max())})
        if s["combine"] == "mul":  # the gate figures only mean something where there is a gate
            s.update({"sat_lo": float((g < 0.05).float().mean()), "sat_hi": float((g > 0.95).float().mean()),
                  # beyond ±17 an fp32 sigmoid is exactly 0 or 1: no gradient reaches the heads through it
                  "i_fp32": float((inst.abs() > 17).float().mean()),
                  "g_mean": float(g.mean()), "g_inst_sd": float(g.std(0, unbiased=False).mean()),
                  # per entry (m×d) over the instances: closed for all (Z_S gets no gradient there), open for
                  # all (a static PT entry), or switching with the instance
                  "off_all": float((g < 0.05).all(0).float().mean()), "on_all": float((g > 0.95).all(0).float().mean()),
                  "g_rel_r2": relation_r2(g, groups)})
    shared = zs if zs is not None else (r["w"]["prompt_embeddings"] if r["method"] == "pt" else None)
    if shared is not None:
        s["zs_norm"] = float(shared.norm(dim=-1).mean())
        w0 = initial_adapter(r, initial_root)
        if w0 is not None:
            z0 = w0["z_s"] if r["method"] == "lopa" else w0["prompt_embeddings"]
            s["zs0_norm"] = float(z0.norm(dim=-1).mean())
            s["drift"] = float((shared - z0).norm() / z0.norm())
            # prompt-init = vocab must have copied m rows of the FM's token embeddings.
            dist = torch.cdist(z0.double(), vocab_rows(c["model"]).double())
            s["zs0_vocab_rows"] = int((dist.min(1).values < 1e-5).sum())
            if r["method"] == "lopa":
                r0 = dict(r, w=w0)
                with torch.no_grad():
                    _, inst0, _ = soft_prompts(r0, e)
                s["i_std0"] = float(inst0.std(unbiased=False))
                u0, v0 = r0["_uv"]
                s["u_norm0"] = float(u0.flatten(1).norm(dim=1).mean())
                s["v_norm0"] = float(v0.flatten(1).norm(dim=1).mean())
    s["acc"], s["rel_ok"] = prediction_stats(r["dir"], rows, value_relation)
    s["per_relation"] = relation_breakdown(r["dir"], rows)
    s["verified"] = min(verify, len(texts))
    return s


# Inference-time ablations (--ablate): the trained adapter with one thing scaled, evaluated by `lopa eval`.
#   zs*c  LoPA's Z_S (so Z) times c          I*c  LoPA's gate logits u vᵀ times c (the row head's output
#   z*c   PT's prompt / IDPG's output times c      layer scaled): I*0 = no instance information, G = 1/2
ABLATIONS = {"lopa": ["zs*0.5", "zs*2", "zs*4", "I*0", "I*0.5", "I*2"], "idpg": ["z*0.05", "z*0.25", "z*0.5", "z*2"],
             "pt": ["z*0.25", "z*0.5", "z*2"]}


def ablated_weights(r, spec):
    what, c = spec.split("*")
    c = float(c)
    w = {k: v.clone() for k, v in r["w"].items()}
    if r["method"] == "lopa" and what == "zs":
        w["z_s"] *= c
    elif r["method"] == "lopa" and what == "I":
        w["row_head.2.weight"] *= c
        w["row_head.2.bias"] *= c
    elif r["method"] == "idpg" and what == "z":
        w["head.2.weight"] *= c
        w["head.2.bias"] *= c
    elif r["method"] == "pt" and what == "z":
        w["prompt_embeddings"] *= c
    else:
        raise GateError(f"--ablate: '{spec}' does not apply to a {r['method']} run")
    return w


def lopa_eval(lopa, run_dir, split):
    p = subprocess.run([lopa, "eval", "--run", run_dir, "--split", split], capture_output=True, text=True)
    if p.returncode != 0:
        raise GateError(f"lopa eval --run {run_dir}: {p.stderr.strip()}")
    return 100.0 * json.loads(p.stdout.strip().splitlines()[-1])["accuracy"]


def fixed_prompt_eval(lopa, r, z, split):
    """`lopa eval` of a PT run whose prompt is z (m×d) on the run's FM and task: {id: prediction}."""
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "adapter"))
        with open(os.path.join(r["dir"], "config.ini")) as f, open(os.path.join(tmp, "config.ini"), "w") as g:
            for line in f:
                g.write("method = pt\n" if line.split("=")[0].strip() == "method" else line)
        with open(os.path.join(tmp, "adapter", "adapter_config.json"), "w") as g:
            json.dump({"peft_type": "PROMPT_TUNING", "task_type": "CAUSAL_LM", "num_virtual_tokens": z.shape[0],
                       "token_dim": z.shape[1], "num_transformer_submodules": 1}, g)
        write_safetensors(os.path.join(tmp, "adapter", "adapter_model.safetensors"), {"prompt_embeddings": z.contiguous()})
        lopa_eval(lopa, tmp, split)
        with open(os.path.join(tmp, "predictions.jsonl")) as f:
            return {j["idx"]: j["prediction"] for j in (json.loads(l) for l in f if l.strip())}


def instance_independent(lopa, r, rows, data_dir, splits):
    """The run's soft prompt made instance-independent: 'mean' = one prompt, the mean of Z over the sampled
    instances (LoPA: Z_S ∘ mean G); 'rel-mean' = per relation the mean Z of that relation's instances, each
    instance scored with its relation's prompt. Accuracy per split (gold from DATA_DIR/SPLIT.jsonl)."""
    e = embeddings(lopa, r["cfg"].get("encoder") or r["cfg"]["model"], r["cfg"].get("encoder-pooling", "auto"),
                   [row["prompt"] for row in rows])
    with torch.no_grad():
        z, inst, zs = soft_prompts(r, e)
    # LoPA: average the gate logits, not the gates, so that the mean keeps the gates' saturation (a mean of
    # near-binary gates is a half-open gate, which I*0.5 shows costs accuracy by itself).
    def mean_prompt(idx):
        if inst is not None and r["acfg"].get("combine", "mul") == "mul":
            return zs * torch.sigmoid(inst[idx].mean(0))
        return z[idx].mean(0)
    rels = [row.get("relation") for row in rows]
    out = {}
    for sp in splits:
        gold = {x["id"]: x for x in read_split(os.path.join(data_dir, sp + ".jsonl"), 0)}
        pred = fixed_prompt_eval(lopa, r, mean_prompt(list(range(len(rows)))), sp)
        out.setdefault("mean", {})[sp] = 100.0 * sum(pred.get(i) == g["answer"] for i, g in gold.items()) / len(gold)
        if None not in rels:
            ok = 0
            for rel in sorted(set(rels)):
                zr = mean_prompt([i for i, x in enumerate(rels) if x == rel])
                pred = fixed_prompt_eval(lopa, r, zr, sp)
                ok += sum(pred.get(i) == g["answer"] for i, g in gold.items() if g.get("relation") == rel)
            out.setdefault("rel-mean", {})[sp] = 100.0 * ok / len(gold)
    return out


def ablate(lopa, runs, splits, rows=None, data_dir=None):
    """One row per run and ablation (the unchanged adapter first): accuracy on each split."""
    files = {"lopa": ("lopa_config.json", "lopa_model.safetensors"), "idpg": ("idpg_config.json", "idpg_model.safetensors"),
             "pt": ("adapter_config.json", "adapter_model.safetensors")}
    out = []
    for r in runs:
        cj, wf = files[r["method"]]
        for spec in ["none"] + ABLATIONS[r["method"]]:
            with tempfile.TemporaryDirectory() as tmp:
                os.makedirs(os.path.join(tmp, "adapter"))
                with open(os.path.join(r["dir"], "config.ini")) as f, open(os.path.join(tmp, "config.ini"), "w") as g:
                    g.write(f.read())
                with open(os.path.join(r["dir"], "adapter", cj)) as f, open(os.path.join(tmp, "adapter", cj), "w") as g:
                    g.write(f.read())
                write_safetensors(os.path.join(tmp, "adapter", wf), r["w"] if spec == "none" else ablated_weights(r, spec))
                row = {"method": r["method"], "lr": r["cfg"].get("lr"), "seed": r["cfg"].get("seed"), "ablation": spec}
                for sp in splits:
                    row[sp] = lopa_eval(lopa, tmp, sp)
                out.append(row)
        if r["method"] != "pt" and rows:
            for spec, acc in instance_independent(lopa, r, rows, data_dir, splits).items():
                out.append(dict({"method": r["method"], "lr": r["cfg"].get("lr"), "seed": r["cfg"].get("seed"),
                                 "ablation": spec}, **acc))
    return out


def ablation_table(rows, splits):
    groups = collections.OrderedDict()
    for r in rows:
        groups.setdefault((r["method"], r["lr"], r["ablation"]), []).append(r)
    lines = ["| method | lr | ablation | seeds | " + " | ".join(f"{sp} acc (mean)" for sp in splits) + " | " +
             " | ".join(f"{sp} per seed" for sp in splits) + " |", "|" + "---|" * (4 + 2 * len(splits))]
    for (m, lr, spec), rr in groups.items():
        lines.append(f"| {m} | {lr} | {spec} | {len(rr)} | " + " | ".join(f"{np.mean([x[sp] for x in rr]):.1f}" for sp in splits)
                     + " | " + " | ".join(" ".join(f"{x[sp]:.1f}" for x in rr) for sp in splits) + " |")
    return "\n".join(lines)


def fmt(v, f="{:.3f}"):
    if v is None or v == "" or (isinstance(v, float) and v != v):
        return "—"
    return f.format(v) if isinstance(v, (int, float)) else str(v)


COLS = [("method", "method", "{}"), ("lr", "lr", "{}"), ("seed", "seed", "{}"), ("init", "init", "{}"),
        ("rank", "r", "{}"), ("combine", "comb", "{}"), ("head_dim", "h", "{}"), ("sat_lo", "sat<.05", "{:.3f}"), ("sat_hi", "sat>.95", "{:.3f}"),
        ("u_norm0", "|u|@0", "{:.3f}"), ("v_norm0", "|v|@0", "{:.3f}"), ("u_norm", "|u|", "{:.2f}"),
        ("v_norm", "|v|", "{:.2f}"), ("i_std0", "I std@0", "{:.4f}"), ("i_mean", "I mean", "{:.3f}"), ("i_std", "I std", "{:.3f}"), ("i_absmax", "max|I|", "{:.2f}"), ("i_fp32", "|I|>17", "{:.3f}"),
        ("g_mean", "G mean", "{:.3f}"), ("off_all", "off∀", "{:.3f}"), ("on_all", "on∀", "{:.3f}"), ("g_inst_sd", "sd_i(G)", "{:.4f}"), ("inst_rel", "sd_i(Z)/rms(Z)", "{:.4f}"),
        ("rel_r2", "rel R²", "{:.2f}"), ("z_norm", "|Z|", "{:.2f}"), ("zs_norm", "|Z_S|", "{:.2f}"),
        ("zs0_norm", "|Z_S0|", "{:.2f}"), ("zs0_vocab_rows", "Z_S0 rows=vocab", "{}"), ("drift", "drift", "{:.2f}"), ("acc", "dev acc", "{:.1f}"),
        ("rel_ok", "rel-ok", "{:.1f}")]


def table(stats):
    lines = ["| " + " | ".join(h for _, h, _ in COLS) + " |", "|" + "---|" * len(COLS)]
    for s in stats:
        lines.append("| " + " | ".join(fmt(s.get(k), f) for k, _, f in COLS) + " |")
    return "\n".join(lines)


def summary(stats):
    groups = collections.OrderedDict()
    for s in stats:
        groups.setdefault((s["method"], s.get("init", ""), s.get("rank", ""), s.get("combine", ""), s.get("head_dim", ""),
                           s["lr"]), []).append(s)
    out = []
    for (m, init, rank, comb, h, lr), ss in groups.items():
        row = {"method": m, "lr": lr, "seed": f"{len(ss)} seeds", "init": init, "rank": rank, "combine": comb, "head_dim": h}
        for k, _, _ in COLS[7:]:
            vals = [s[k] for s in ss if isinstance(s.get(k), (int, float)) and not isinstance(s.get(k), bool) and s[k] == s[k]]
            if vals:
                row[k] = float(np.mean(vals))
        out.append(row)
    return table(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="*", help="run directories (lopa, idpg, pt)")
    ap.add_argument("--root", help="a `lopa demo` output directory: its runs/{lopa,idpg,pt}/*")
    ap.add_argument("--data", help="the split's JSONL (default: ROOT/data/synth-facts/SPLIT.jsonl)")
    ap.add_argument("--glue", action="store_true",
                    help="instances from the runs' GLUE dev.tsv (their task and data-dir) in lopa's template")
    ap.add_argument("--split", default="dev")
    ap.add_argument("--n", type=int, default=72, help="first N instances (0: all)")
    ap.add_argument("--lopa", default=os.path.join(HERE, "..", "build", "bin", "lopa"))
    ap.add_argument("--verify", type=int, default=2, help="texts per run checked against `lopa prompt`")
    ap.add_argument("--make-initial", metavar="DIR", help="rerun each (method, seed, init) for one step with save-initial")
    ap.add_argument("--initial-root", metavar="DIR", help="where --make-initial wrote the step-0 adapters")
    ap.add_argument("--json", help="also write every run's figures as JSON here")
    ap.add_argument("--ablate", action="store_true",
                    help="also evaluate each run (`lopa eval`, dev and test) with its prompt or gate logits scaled (ABLATIONS)")
    ap.add_argument("--lr", help="only runs at these learning rates: METHOD=LR,... (e.g. lopa=0.001,idpg=0.003,pt=0.03)")
    a = ap.parse_args(argv)
    dirs = list(a.runs)
    if a.root:
        for m in ("lopa", "idpg", "pt"):
            dirs += sorted(d for d in glob.glob(os.path.join(a.root, "runs", m, "*")) if os.path.isdir(os.path.join(d, "adapter")))
    if not dirs:
        raise GateError("no run directories (give RUN_DIR... or --root DEMO_OUT)")
    runs = [load_run(d) for d in dirs]
    value_relation = {}
    if a.glue and a.ablate:
        raise GateError("--ablate evaluates on synth-facts' dev and test splits; it does not take --glue")
    if a.glue:
        rows, data = glue_rows(runs, a.n)
    else:
        data = a.data or (os.path.join(a.root, "data", "synth-facts", a.split + ".jsonl") if a.root else None)
        if not data:
            raise GateError("--data SPLIT.jsonl (or --glue) is needed without --root")
        rows = read_split(data, a.n)
        # A value's relation, from the answers of the split's instances (synth-facts' 12 values, 3 relations).
        for p in glob.glob(os.path.join(os.path.dirname(data), "*.jsonl")):
            for row in read_split(p, 0):
                if "answer" in row and "relation" in row:
                    value_relation[row["answer"]] = row["relation"]
    if a.lr:
        keep = dict(p.split("=", 1) for p in a.lr.split(","))
        runs = [r for r in runs if r["method"] not in keep or float(r["cfg"].get("lr", "nan")) == float(keep[r["method"]])]
    if a.make_initial:
        make_initial(a.lopa, runs, a.make_initial)
    initial_root = a.initial_root or a.make_initial
    stats = [analyse(r, rows, a.lopa, a.verify, initial_root, value_relation) for r in runs]
    for fm in sorted({r["cfg"]["model"] for r in runs}):
        emb = vocab_rows(fm)
        n = emb.norm(dim=1)
        print(f"FM {fm}: token-embedding row norm mean {n.mean():.3f} (sd {n.std():.3f}, min {n.min():.3f}, "
              f"max {n.max():.3f}); N(0,1) rows of d={emb.shape[1]}: {emb.shape[1] ** 0.5:.2f}")
    for (enc, pool, _), e in _EMB.items():  # how much the instances differ in what the heads are given
        en = torch.nn.functional.normalize(e.double(), dim=1)
        cos = en @ en.T
        k = e.shape[0]
        print(f"encoder {enc} (pooling {pool}), {k} instances: sd_i(e)/rms(e) "
              f"{float(e.std(0, unbiased=False).mean() / e.pow(2).mean().sqrt()):.3f}, mean cosine between two "
              f"instances {float((cos.sum() - k) / (k * (k - 1))):.3f}, |e| {float(e.norm(dim=1).mean()):.1f}")
    if all("relation" in row for row in rows):
        for (enc, pool, _), e in _EMB.items():
            print(f"encoder {enc} (pooling {pool}): relation R² of the instances' embeddings "
                  f"{relation_r2(e, [row['relation'] for row in rows]):.2f}")
    print(f"instances: the first {len(rows)} of {data}; soft prompts recomputed from adapter/ and checked "
          f"against `lopa prompt` on {a.verify} texts per run\n")
    print("Per run:\n")
    print(table(stats))
    print("\nPer method and learning rate (mean over seeds):\n")
    print(summary(stats))
    rt = relation_table(stats)
    if rt:
        print("\nPer relation (predictions.jsonl at each run's best dev step; mean over seeds): accuracy % and the share "
              "of the relation's instances given its most frequent predicted value ('gold': that share for the answers)\n")
        print(rt)
    abl = []
    if a.ablate:
        abl = ablate(a.lopa, runs, ["dev", "test"], rows, os.path.dirname(data))
        print("\nInference-time ablations (`lopa eval` of the adapter with one thing scaled; 'none' = as trained):\n")
        print(ablation_table(abl, ["dev", "test"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": stats, "ablations": abl}, f, indent=1)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GateError as e:
        print(f"lopa_gates.py: {e}", file=sys.stderr)
        sys.exit(1)
