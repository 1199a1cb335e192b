#!/usr/bin/python3
"""Golden-loss reference: the official LoPA code's prompt generators in a PyTorch trainer that replays a lopa run.

The modules below are ported line for line from the paper's code (Jain et al., NeurIPS 2024):
  * LatentPromptAttentionGenerator and IDPGSoftPromptGenerator: jabhinav/Prompt-Tuning-Strikes-Back-with-LOPA,
    utils/model.py (row/col heads: dropout -> dense -> tanh -> out_proj, einsum('bir,bjr->bij'); IDPG: dropout ->
    down -> tanh -> up, view B x m x d);
  * the combination of the shared prompt with the instance component: custom_peft/peft_lopa_model.py
    (PeftLopaModelForCausalLM.forward: prompts * latent_attention_weights, prompts prepended to inputs_embeds,
    mask ones and labels -100 on the prompt) with the lopa_type variants of
    jabhinav/Prompt-Tuning-Strikes-Back-with-LOPA-NLU (utils/model.py LOPA.forward: sigmoid only for 'lopa';
    custom_peft/peft_lopa_model.py: 'lopa' mul, 'lopa-concat' cat on the token axis, 'lopa-add', 'lopa-max');
  * PT: PEFT's PromptEmbedding (an nn.Embedding of m rows, looked up with arange(m) per row of the batch);
  * IDPG's soft prompt prepended directly (custom_peft/peft_idpg_baseline_model.py);
  * LoRA as PEFT's Linear computes it: base(x) + lora_B(lora_A(lora_dropout(x))) * (lora_alpha / r).
The frozen FM is bench/train_ref.py's hidden-state loop of the family (transformers' forward from inputs_embeds,
without the FM's own dropout), the loss transformers' CausalLM loss (fp32 logits at every position, shifted,
mean over the labelled tokens of the batch). The encoder of LoPA/IDPG is the FM itself (or the run's encoder
model): the last-layer state at the last token of the instance's encoder input, computed without padding
(the official code's x[:, -1] on its left-padded encoder batch), under no_grad. Optimizer as the official
trainer (trainers/base.py): torch.optim.AdamW(lr, weight_decay) stepped, then the transformers scheduler
(constant / linear / cosine with warmup, LambdaLR), then zero_grad; gradient clipping with
torch.nn.utils.clip_grad_norm_ when the run's max-grad-norm > 0 (the official trainer does not clip).

It replays RUN_DIR written by `lopa train ... --save-initial true`: config.ini (method and hyperparameters),
initial/ (the trainable parameters before the first step, in the method's adapter layout), initial/items.jsonl
(each training item's prompt, gold target and encoder input ids) and initial/batches.jsonl (each step's item
indices). It prints one JSON line: {"losses": [per-step training loss], "frozen_losses": [the same batches under the
initial parameters], "frozen_max_rel": largest relative difference of the two, "init": {...}} where "init" checks lopa's
initial values against the official initialisation (zero output biases, dense biases inside torch.nn.Linear's
U(+-1/sqrt(fan_in)), weight and prompt standard deviations).

  official_ref.py --run RUN_DIR [--steps N] [--lopa-type lopa|lopa-concat|lopa-add|lopa-max] [--threads T]
(--lopa-type overrides the run's lopa-combine: a negative control for tests.)
"""
import argparse
import configparser
import json
import math
import os
import re
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_ref  # noqa: E402
from llama_ref import read_safetensors  # noqa: E402

# lopa's lopa-combine values -> the NLU repository's lopa_type
LOPA_TYPE = {"mul": "lopa", "concat": "lopa-concat", "add": "lopa-add", "max": "lopa-max"}


class LatentPromptAttentionGenerator(torch.nn.Module):
    """utils/model.py's generator without its encoder (x is the frozen encoder's instance embedding)."""

    def __init__(self, hidden_dim, n_virtual_tokens, word_embedding_dim, rank, dropout_prob, MLP_h=None,
                 use_bias=True, initializer_range=0.02):
        super().__init__()
        self.rank = rank
        self.n_virtual_tokens = n_virtual_tokens
        self.word_embedding_dim = word_embedding_dim
        self.config_initializer_range = initializer_range
        if MLP_h is None:
            MLP_h = hidden_dim
        self.row_dropout = torch.nn.Dropout(dropout_prob)
        self.row_dense = torch.nn.Linear(hidden_dim, MLP_h, bias=use_bias)
        self.row_out_proj = torch.nn.Linear(MLP_h, n_virtual_tokens * self.rank, bias=use_bias)
        self.col_dropout = torch.nn.Dropout(dropout_prob)
        self.col_dense = torch.nn.Linear(hidden_dim, MLP_h, bias=use_bias)
        self.col_out_proj = torch.nn.Linear(MLP_h, word_embedding_dim * self.rank, bias=use_bias)
        self.init_predictor_head()

    def init_predictor_head(self):
        self.row_dense.weight.data.normal_(mean=0.0, std=self.config_initializer_range)
        self.row_out_proj.weight.data.normal_(mean=0.0, std=self.config_initializer_range)
        self.row_out_proj.bias.data.zero_()
        self.col_dense.weight.data.normal_(mean=0.0, std=self.config_initializer_range)
        self.col_out_proj.weight.data.normal_(mean=0.0, std=self.config_initializer_range)
        self.col_out_proj.bias.data.zero_()

    def forward(self, x):
        row_weights = self.row_dropout(x)
        row_weights = self.row_dense(row_weights)
        row_weights = torch.tanh(row_weights)
        row_weights = self.row_out_proj(row_weights)
        row_weights = row_weights.view(-1, self.n_virtual_tokens, self.rank)
        col_weights = self.col_dropout(x)
        col_weights = self.col_dense(col_weights)
        col_weights = torch.tanh(col_weights)
        col_weights = self.col_out_proj(col_weights)
        col_weights = col_weights.view(-1, self.word_embedding_dim, self.rank)
        return torch.einsum('bir,bjr->bij', row_weights, col_weights)


class IDPGSoftPromptGenerator(torch.nn.Module):
    """utils/model.py's IDPG generator without its encoder."""

    def __init__(self, hidden_dim, n_virtual_tokens, word_embedding_dim, dropout_prob, MLP_h=None, use_bias=True,
                 initializer_range=0.02):
        super().__init__()
        self.n_virtual_tokens = n_virtual_tokens
        self.word_embedding_dim = word_embedding_dim
        self.config_initializer_range = initializer_range
        if MLP_h is None:
            MLP_h = hidden_dim
        self._dropout = torch.nn.Dropout(dropout_prob)
        self.layer_down_project = torch.nn.Linear(hidden_dim, MLP_h, bias=use_bias)
        self.layer_up_project = torch.nn.Linear(MLP_h, n_virtual_tokens * word_embedding_dim, bias=use_bias)
        self.init_predictor_head()

    def init_predictor_head(self):
        self.layer_down_project.weight.data.normal_(mean=0.0, std=self.config_initializer_range)
        self.layer_up_project.weight.data.normal_(mean=0.0, std=self.config_initializer_range)
        self.layer_up_project.bias.data.zero_()

    def forward(self, inst_embedding):
        soft_prompt_embedding = self._dropout(inst_embedding)
        soft_prompt_embedding = self.layer_down_project(soft_prompt_embedding)
        soft_prompt_embedding = torch.tanh(soft_prompt_embedding)
        soft_prompt_embedding = self.layer_up_project(soft_prompt_embedding)
        return soft_prompt_embedding.view(-1, self.n_virtual_tokens, self.word_embedding_dim)


class PromptEmbedding(torch.nn.Module):
    """PEFT's PromptEmbedding with PromptTuningInit.RANDOM (nn.Embedding's N(0, 1))."""

    def __init__(self, num_virtual_tokens, token_dim):
        super().__init__()
        self.embedding = torch.nn.Embedding(num_virtual_tokens, token_dim)

    def forward(self, indices):
        return self.embedding(indices)


class LoraLayer(torch.nn.Module):
    """PEFT's LoRA update of one Linear (or Conv1D) module: lora_B(lora_A(lora_dropout(x))) * scaling."""

    def __init__(self, in_features, out_features, r, lora_alpha, lora_dropout):
        super().__init__()
        self.lora_dropout = torch.nn.Dropout(lora_dropout) if lora_dropout > 0 else torch.nn.Identity()
        self.lora_A = torch.nn.Linear(in_features, r, bias=False)
        self.lora_B = torch.nn.Linear(r, out_features, bias=False)
        self.scaling = lora_alpha / r

    def forward(self, x):
        return self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling


def combine(lopa_type, prompts, latent_attention_weights):
    """The NLU repository's PeftLopaModel forward: how the shared prompt meets the instance component."""
    if lopa_type == 'lopa':
        return prompts * latent_attention_weights
    if lopa_type == 'lopa-concat':
        return torch.cat((prompts, latent_attention_weights), dim=1)
    if lopa_type == 'lopa-add':
        return prompts + latent_attention_weights
    if lopa_type == 'lopa-max':
        return torch.max(prompts, latent_attention_weights)
    raise ValueError("Invalid LoPA type: {}".format(lopa_type))


def read_config(run):
    """RUN_DIR/config.ini: 'key = value' lines (every resolved training key)."""
    cp = configparser.ConfigParser(interpolation=None, delimiters=("=",), comment_prefixes=("#",))
    cp.optionxform = str
    with open(os.path.join(run, "config.ini")) as f:
        cp.read_string("[run]\n" + f.read())
    return dict(cp["run"])


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def hf_lambda(schedule, warmup, total):
    """transformers.get_scheduler's lr_lambda: constant_with_warmup, linear, cosine (half a cycle)."""
    def f(step):
        if step < warmup:
            return float(step) / float(max(1, warmup))
        if schedule == "constant":
            return 1.0
        progress = float(step - warmup) / float(max(1, total - warmup))
        if schedule == "linear":
            return max(0.0, 1.0 - progress)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 2.0 * 0.5 * progress)))
    return f


def load_into(module, mapping, tensors, what):
    """Copies lopa's tensors (by lopa's names) into module's parameters (by the official names)."""
    params = dict(module.named_parameters())
    assert set(mapping.values()) == set(params), f"{what}: mapping covers {sorted(mapping.values())}, " \
                                                 f"module has {sorted(params)}"
    assert set(mapping) == set(tensors), f"{what}: lopa wrote {sorted(tensors)}, expected {sorted(mapping)}"
    with torch.no_grad():
        for src, dst in mapping.items():
            assert params[dst].shape == tensors[src].shape, f"{what}: {src} {tuple(tensors[src].shape)} vs " \
                                                             f"{dst} {tuple(params[dst].shape)}"
            params[dst].copy_(tensors[src])


def init_report(tensors, fan_in):
    """lopa's initial values against the official initialisation, per tensor kind."""
    out = {}
    for name, t in tensors.items():
        t = t.double()
        if name.endswith("2.bias") or name.endswith("out_proj.bias"):
            out[name] = {"rule": "zero", "ok": bool((t == 0).all())}
        elif name.endswith("0.bias"):
            bound = 1.0 / math.sqrt(fan_in)
            out[name] = {"rule": "U(+-1/sqrt(H))", "ok": bool(t.abs().max() <= bound) and float(t.std()) > 0.3 * bound}
        elif name.endswith(".weight") and ("head" in name):
            out[name] = {"rule": "N(0, 0.02)", "std": float(t.std()), "ok": abs(float(t.std()) - 0.02) < 0.004}
        elif name in ("z_s", "prompt_embeddings"):
            out[name] = {"rule": "N(0, 1)", "std": float(t.std()), "ok": abs(float(t.std()) - 1.0) < 0.2}
        elif name.endswith("lora_B.weight"):
            out[name] = {"rule": "zero", "ok": bool((t == 0).all())}
        elif name.endswith("lora_A.weight"):
            bound = 1.0 / math.sqrt(t.shape[1])  # kaiming_uniform_(a=sqrt(5)): U(+-1/sqrt(in))
            out[name] = {"rule": "kaiming_uniform(a=sqrt(5))", "ok": bool(t.abs().max() <= bound)}
    return out


LORA_NAME = {"llama": {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "gate",
                       "up_proj": "up", "down_proj": "down"}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="RUN_DIR of `lopa train --save-initial true`")
    ap.add_argument("--steps", type=int, default=0, help="steps to replay (0: every step in batches.jsonl)")
    ap.add_argument("--lopa-type", default="", help="override the run's combination (negative control)")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = read_config(a.run)
    init_dir = os.path.join(a.run, "initial")
    items = read_jsonl(os.path.join(init_dir, "items.jsonl"))
    batches = read_jsonl(os.path.join(init_dir, "batches.jsonl"))
    steps = a.steps or len(batches)
    assert len(batches) >= steps, f"{init_dir}/batches.jsonl has {len(batches)} steps, {steps} asked"

    method = cfg["method"]
    fam = train_ref.family_of(cfg["model"])
    fm = fam.load(cfg["model"])
    embed, head = fam.embed(fm), fam.head(fm)
    d = embed.shape[1]
    m = int(cfg["num-virtual-tokens"])
    dropout = float(cfg["prompt-dropout"])

    trainable, lora, emb, prompt_tokens = [], None, None, None
    if method in ("lopa", "idpg"):
        # auto is the last real token for a decoder encoder, the only kind this reference loads
        assert cfg.get("encoder-pooling", "last") in ("last", "auto"), "the official decoder encoder pools x[:, -1]"
        enc = fam.load(cfg["encoder"]) if cfg.get("encoder") else fm
        with torch.no_grad():  # the frozen encoder, no padding: x[:, -1] of the last layer
            rows = []
            for it in items:
                ids = torch.tensor([it["encoder_input"]], dtype=torch.long)
                h = fam.hidden(enc, F.embedding(ids, fam.embed(enc)), torch.ones_like(ids))
                rows.append(h[0, -1].float())
            emb = torch.stack(rows)
        H = emb.shape[1]
    if method == "lopa":
        tensors = read_safetensors(os.path.join(init_dir, "lopa_model.safetensors"))
        head_dim = int(cfg["head-dim"]) or None
        gen = LatentPromptAttentionGenerator(H, m, d, int(cfg["rank"]), dropout, MLP_h=head_dim)
        pe = PromptEmbedding(m, d)
        load_into(gen, {"row_head.0.weight": "row_dense.weight", "row_head.0.bias": "row_dense.bias",
                        "row_head.2.weight": "row_out_proj.weight", "row_head.2.bias": "row_out_proj.bias",
                        "col_head.0.weight": "col_dense.weight", "col_head.0.bias": "col_dense.bias",
                        "col_head.2.weight": "col_out_proj.weight", "col_head.2.bias": "col_out_proj.bias"},
                  {k: v for k, v in tensors.items() if k != "z_s"}, "lopa heads")
        load_into(pe, {"z_s": "embedding.weight"}, {"z_s": tensors["z_s"]}, "lopa Z_S")
        trainable = list(gen.parameters()) + list(pe.parameters())
        lopa_type = a.lopa_type or LOPA_TYPE[cfg["lopa-combine"]]
        modules = [gen, pe]
    elif method == "idpg":
        tensors = read_safetensors(os.path.join(init_dir, "idpg_model.safetensors"))
        gen = IDPGSoftPromptGenerator(H, m, d, dropout, MLP_h=int(cfg["head-dim"]) or 256)
        load_into(gen, {"head.0.weight": "layer_down_project.weight", "head.0.bias": "layer_down_project.bias",
                        "head.2.weight": "layer_up_project.weight", "head.2.bias": "layer_up_project.bias"},
                  tensors, "idpg")
        trainable = list(gen.parameters())
        modules = [gen]
    elif method == "pt":
        tensors = read_safetensors(os.path.join(init_dir, "adapter_model.safetensors"))
        pe = PromptEmbedding(m, d)
        load_into(pe, {"prompt_embeddings": "embedding.weight"}, tensors, "pt")
        trainable = list(pe.parameters())
        modules = [pe]
    elif method == "lora":
        tensors = read_safetensors(os.path.join(init_dir, "adapter_model.safetensors"))
        r, alpha, ldrop = int(cfg["rank"]), float(cfg["lora-alpha"]), float(cfg["lora-dropout"])
        names = LORA_NAME.get(fam.name, {})
        layers = {}
        for name, t in tensors.items():
            mt = re.search(r"\.(?:layers|h)\.(\d+)\.(?:[a-z_]+\.)*?([a-z_]+)\.lora_([AB])\.weight$", name)
            assert mt, f"unexpected LoRA tensor name {name}"
            key = (int(mt.group(1)), names.get(mt.group(2), mt.group(2)))
            prefix = name[: -len(f".lora_{mt.group(3)}.weight")]
            if key not in layers:
                a_t, b_t = tensors[prefix + ".lora_A.weight"], tensors[prefix + ".lora_B.weight"]
                layers[key] = (LoraLayer(a_t.shape[1], b_t.shape[0], r, alpha, ldrop), prefix)
        modules = []
        for key, (mod, prefix) in layers.items():
            load_into(mod, {prefix + ".lora_A.weight": "lora_A.weight", prefix + ".lora_B.weight": "lora_B.weight"},
                      {k: tensors[k] for k in (prefix + ".lora_A.weight", prefix + ".lora_B.weight")}, prefix)
            modules.append(mod)
        lora = {key: mod for key, (mod, _) in layers.items()}
        trainable = [p for mod in modules for p in mod.parameters()]
    else:
        raise SystemExit(f"official_ref.py: method {method} has no official reference here")
    for mod in modules:
        mod.train()

    opt = torch.optim.AdamW(trainable, lr=float(cfg["lr"]), weight_decay=float(cfg["weight-decay"]))
    max_steps = int(cfg["max-steps"])
    assert max_steps > 0, "replay needs max-steps > 0 (the schedule's total)"
    sched = torch.optim.lr_scheduler.LambdaLR(opt, hf_lambda(cfg["schedule"], int(cfg["warmup-steps"]), max_steps))
    max_norm = float(cfg["max-grad-norm"])

    def step_loss(step):
        """The training loss of step `step`'s batch under the current parameters."""
        idx = batches[step]["items"]
        assert batches[step]["step"] == step, f"batches.jsonl line {step + 1} is step {batches[step]['step']}"
        rows = [items[i]["prompt"] + items[i]["target"] for i in idx]
        B, T = len(rows), max(len(r) for r in rows)
        ids = torch.zeros(B, T, dtype=torch.long)
        mask = torch.zeros(B, T, dtype=torch.long)
        labels = torch.full((B, T), -100, dtype=torch.long)
        for b, i in enumerate(idx):
            p, t = items[i]["prompt"], items[i]["target"]
            ids[b, : len(p) + len(t)] = torch.tensor(p + t)
            mask[b, : len(p) + len(t)] = 1
            labels[b, len(p): len(p) + len(t)] = torch.tensor(t)
        inputs_embeds = F.embedding(ids, embed)
        prompts = None
        if method == "lopa":
            att_logits = gen(emb[idx])
            inst = torch.sigmoid(att_logits) if lopa_type == 'lopa' else att_logits
            shared = pe(torch.arange(m).unsqueeze(0).expand(B, -1))
            prompts = combine(lopa_type, shared.to(inputs_embeds.dtype), inst)
        elif method == "idpg":
            prompts = gen(emb[idx])
        elif method == "pt":
            prompts = pe(torch.arange(m).unsqueeze(0).expand(B, -1)).to(inputs_embeds.dtype)
        if prompts is not None:
            P = prompts.shape[1]
            inputs_embeds = torch.cat((prompts, inputs_embeds), dim=1)
            mask = torch.cat((torch.ones(B, P, dtype=torch.long), mask), dim=1)
            labels = torch.cat((torch.full((B, P), -100, dtype=torch.long), labels), dim=1)
        return train_ref.lm_loss(head, fam.hidden(fm, inputs_embeds, mask, lora), labels, "all")

    # The same batches without any update: how far the steps moved the loss (a test's power).
    with torch.no_grad():
        frozen = [float(step_loss(step)) for step in range(steps)]
    losses = []
    for step in range(steps):
        loss = step_loss(step)
        loss.backward()
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_(trainable, max_norm)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(float(loss))
    moved = max(abs(a - b) / abs(b) for a, b in zip(losses, frozen))
    print(json.dumps({"method": method, "family": fam.name, "steps": steps, "losses": losses,
                      "frozen_losses": frozen, "frozen_max_rel": moved,
                      "lopa_type": lopa_type if method == "lopa" else None,
                      "trainable_parameters": sum(p.numel() for p in trainable),
                      "init": init_report(tensors, emb.shape[1] if emb is not None else 1)}))


if __name__ == "__main__":
    main()
