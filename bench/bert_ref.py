#!/usr/bin/python3
"""PyTorch-eager reference of Hugging Face BertModel / BertForMaskedLM (eager attention), written from
transformers' modeling_bert.py for tests of the C++ runtime; also the shared command line of the encoder
references (roberta_ref.py and codesage_ref.py import it).

What it follows: BertEmbeddings (inputs_embeds + token_type_embeddings(0), then + position_embeddings with
position ids arange(T), then LayerNorm, eps = layer_norm_eps); the extended attention mask
(1 - mask)[:, None, None, :] * finfo(dtype).min added to q k^T / sqrt(head_dim) before the softmax; post-LN
layers: LayerNorm(attention.output.dense(ctx) + x), then LayerNorm(output.dense(ACT2FN[hidden_act](
intermediate.dense(h))) + h); no final norm. BertForMaskedLM's cls.predictions: transform.dense ->
ACT2FN[hidden_act] -> transform.LayerNorm -> decoder (tied to word_embeddings unless tie_word_embeddings is
false) + cls.predictions.bias. BertModel's pooler is not used: the sequence embedding is the first token's
last hidden state. Keys: BertForMaskedLM saves "bert." + the base keys, BertModel the base keys; either is
read with either config, as from_pretrained does, and TensorFlow-era LayerNorm.gamma / beta are renamed.

  bert_ref.py init   --config CONFIG.json --out DIR --seed S [--format safetensors|bin] [--dtype D]
                     [--prefix auto|yes|no] [--extras] [--legacy-names]
  bert_ref.py logits --model DIR --input INPUTS.jsonl                 (MLM logits; a *ForMaskedLM checkpoint)
  bert_ref.py embed  --model DIR --input INPUTS.jsonl [--pooling auto|first|mean|last]
"""
import argparse
import json
import math
import os
import shutil
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_io  # noqa: E402
from ref_io import RefError  # noqa: E402


class Config:
    # BertConfig's defaults; RobertaConfig differs in pad_token_id (1) and the head activation (gelu).
    PAD = 0

    def __init__(self, c, where):
        self.raw = c
        self.arch = (c.get("architectures") or [""])[0]
        self.mlm = self.arch.endswith("ForMaskedLM")
        self.V = c.get("vocab_size", 30522)
        self.d = c.get("hidden_size", 768)
        self.L = c.get("num_hidden_layers", 12)
        self.H = c.get("num_attention_heads", 12)
        self.F = c.get("intermediate_size", 3072)
        self.P = c.get("max_position_embeddings", 512)
        self.types = c.get("type_vocab_size", 2)
        self.eps = c.get("layer_norm_eps", 1e-12)
        self.act = c.get("hidden_act", "gelu")
        self.pad = c.get("pad_token_id", self.PAD)
        self.tie = c.get("tie_word_embeddings", True)
        if self.d % self.H:
            raise RefError(f"{where}: hidden_size {self.d} is not divisible by num_attention_heads {self.H}")
        self.hd = self.d // self.H
        if c.get("position_embedding_type", "absolute") != "absolute":
            raise RefError(f"{where}: only absolute position embeddings are supported by this reference")
        if c.get("is_decoder", False) or c.get("add_cross_attention", False):
            raise RefError(f"{where}: decoder / cross-attention configurations are not supported by this reference")
        ref_io.activation(self.act, where)


class Family:
    """The names and the few rules in which BERT and RoBERTa differ."""
    name = "bert"
    prefix = "bert."
    config = Config
    head = "cls.predictions."
    head_dense, head_norm = "transform.dense", "transform.LayerNorm"
    pooling = "first"

    def head_act(self, cfg):
        return ref_io.activation(cfg.act, "config")

    def position_ids(self, ids, cfg):
        # BertEmbeddings: the registered position_ids buffer arange(max_position_embeddings)[:, :T]
        return torch.arange(ids.size(1), dtype=torch.long).unsqueeze(0).expand(ids.shape)

    def extras(self, cfg, pre):
        """Tensors a hub checkpoint carries beside the model's (ignored by both implementations)."""
        d = cfg.d
        out = [(pre + "pooler.dense.weight", [d, d], "weight"), (pre + "pooler.dense.bias", [d], "bias"),
               (pre + "embeddings.position_ids", None, torch.arange(cfg.P).unsqueeze(0))]
        if cfg.mlm:
            out += [("cls.seq_relationship.weight", [2, d], "weight"), ("cls.seq_relationship.bias", [2], "bias")]
        return out


def spec(family, c, args):
    """State-dict names, shapes and init kinds as save_pretrained writes them (tied decoder weight not written)."""
    cfg = family.config(c, args.config)
    if args.prefix == "auto":
        pre = family.prefix if cfg.mlm else ""
    else:
        pre = family.prefix if args.prefix == "yes" else ""
    d, F_ = cfg.d, cfg.F
    ln = (lambda m: [(m + ".gamma", [d], "ln_weight"), (m + ".beta", [d], "ln_bias")]) if args.legacy_names else \
        (lambda m: [(m + ".weight", [d], "ln_weight"), (m + ".bias", [d], "ln_bias")])
    lin = lambda m, o, i: [(m + ".weight", [o, i], "weight"), (m + ".bias", [o], "bias")]  # noqa: E731
    e = pre + "embeddings."
    s = [(e + "word_embeddings.weight", [cfg.V, d], "weight"), (e + "position_embeddings.weight", [cfg.P, d], "weight"),
         (e + "token_type_embeddings.weight", [cfg.types, d], "weight")] + ln(e + "LayerNorm")
    for i in range(cfg.L):
        p = f"{pre}encoder.layer.{i}."
        s += lin(p + "attention.self.query", d, d) + lin(p + "attention.self.key", d, d)
        s += lin(p + "attention.self.value", d, d) + lin(p + "attention.output.dense", d, d)
        s += ln(p + "attention.output.LayerNorm")
        s += lin(p + "intermediate.dense", F_, d) + lin(p + "output.dense", d, F_) + ln(p + "output.LayerNorm")
    if cfg.mlm:
        h = family.head
        s += lin(h + family.head_dense, d, d) + ln(h + family.head_norm) + [(h + "bias", [cfg.V], "bias")]
        if not cfg.tie:
            s.append((h + "decoder.weight", [cfg.V, d], "weight"))
    if args.extras:
        s += family.extras(cfg, pre)
    return s


def _get(sd, name, shape, where, prefix):
    """from_pretrained's key matching: the name, or it with / without the base model's prefix, or the old
    LayerNorm.gamma / beta spelling."""
    cands = [name]
    if name.startswith(prefix):
        cands.append(name[len(prefix):])
    else:
        cands.append(prefix + name)
    for n in list(cands):
        if n.endswith("LayerNorm.weight"):
            cands.append(n[:-len("weight")] + "gamma")
        if n.endswith("LayerNorm.bias"):
            cands.append(n[:-len("bias")] + "beta")
    for n in cands:
        if n in sd:
            return ref_io.need(sd, n, shape, where)
    raise RefError(f"{where}: checkpoint lacks {name}")


class Model:
    def __init__(self, family, d):
        self.family = family
        self.cfg = cfg = family.config(ref_io.load_config(d), os.path.join(d, "config.json"))
        sd = ref_io.float32_weights(ref_io.load_state_dict(d))
        pre = family.prefix
        b = lambda n, shape: _get(sd, pre + n, shape, d, pre)  # noqa: E731
        D, F_ = cfg.d, cfg.F
        lin = lambda m, o, i: (b(m + ".weight", [o, i]), b(m + ".bias", [o]))  # noqa: E731
        ln = lambda m: (b(m + ".weight", [D]), b(m + ".bias", [D]))  # noqa: E731
        self.word = b("embeddings.word_embeddings.weight", [cfg.V, D])
        self.pos = b("embeddings.position_embeddings.weight", [cfg.P, D])
        self.types = b("embeddings.token_type_embeddings.weight", [cfg.types, D])
        self.emb_ln = ln("embeddings.LayerNorm")
        self.layers = []
        for i in range(cfg.L):
            p = f"encoder.layer.{i}."
            self.layers.append({
                "q": lin(p + "attention.self.query", D, D), "k": lin(p + "attention.self.key", D, D),
                "v": lin(p + "attention.self.value", D, D), "o": lin(p + "attention.output.dense", D, D),
                "ln1": ln(p + "attention.output.LayerNorm"), "i": lin(p + "intermediate.dense", F_, D),
                "out": lin(p + "output.dense", D, F_), "ln2": ln(p + "output.LayerNorm"),
            })
        self.act = ref_io.activation(cfg.act, d)
        self.head = None
        if cfg.mlm:
            h = family.head
            hg = lambda n, shape: _get(sd, h + n, shape, d, "")  # noqa: E731
            self.head = {
                "dense": (hg(family.head_dense + ".weight", [D, D]), hg(family.head_dense + ".bias", [D])),
                "ln": (hg(family.head_norm + ".weight", [D]), hg(family.head_norm + ".bias", [D])),
                "decoder": self.word if cfg.tie else hg("decoder.weight", [cfg.V, D]),
                "bias": hg("bias", [cfg.V]),
            }
            self.head_act = family.head_act(cfg)

    def ln(self, x, wb):
        return F.layer_norm(x, (self.cfg.d,), wb[0], wb[1], self.cfg.eps)

    def heads(self, t):
        B, T, _ = t.shape
        return t.view(B, T, self.cfg.H, self.cfg.hd).permute(0, 2, 1, 3)

    def hidden(self, ids, mask=None, kv=None):
        """ids B x T, mask B x T of 0/1 or None -> last_hidden_state B x T x d. kv: a list that receives each
        layer's (key, value), B x heads x T x head_dim, as the self-attention computes them."""
        cfg = self.cfg
        B, T = ids.shape
        pos = self.family.position_ids(ids, cfg)
        if int(pos.max()) >= cfg.P:
            raise RefError(f"position {int(pos.max())} exceeds max_position_embeddings {cfg.P}")
        tt = torch.zeros_like(ids)
        x = F.embedding(ids, self.word) + F.embedding(tt, self.types)
        x = x + F.embedding(pos, self.pos)
        x = self.ln(x, self.emb_ln)
        ext = None
        if mask is not None:
            ext = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for L in self.layers:
            q, k, v = (self.heads(F.linear(x, *L[n])) for n in ("q", "k", "v"))
            if kv is not None:
                kv.append((k, v))
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(cfg.hd)
            if ext is not None:
                s = s + ext
            p = torch.softmax(s, dim=-1)
            ctx = torch.matmul(p, v).permute(0, 2, 1, 3).contiguous().view(B, T, cfg.d)
            a = self.ln(F.linear(ctx, *L["o"]) + x, L["ln1"])
            x = self.ln(F.linear(self.act(F.linear(a, *L["i"])), *L["out"]) + a, L["ln2"])
        return x

    def logits(self, h):
        if self.head is None:
            raise RefError(f"{self.cfg.arch} has no masked-LM head")
        hd = self.head
        t = F.layer_norm(self.head_act(F.linear(h, *hd["dense"])), (self.cfg.d,), hd["ln"][0], hd["ln"][1], self.cfg.eps)
        return F.linear(t, hd["decoder"]) + hd["bias"]


def pool(h, mask, how):
    """first: h[:, 0]; mean: sum(h * mask) / sum(mask), then F.normalize; last: the last position with mask 1."""
    B, T, _ = h.shape
    m = torch.ones(B, T, dtype=torch.long) if mask is None else mask
    if how == "first":
        return h[:, 0]
    if how == "mean":
        return F.normalize((h * m[:, :, None]).sum(1) / m.sum(1)[:, None], p=2, dim=-1)
    if how == "last":
        idx = torch.tensor([max(t for t in range(T) if m[b, t]) for b in range(B)])
        return h[torch.arange(B), idx]
    raise RefError(f"unknown pooling {how!r}")


# --- CLI shared by the encoder references ---------------------------------------------------------------------
def main(family, description):
    """family: spec(c, args), Model(dir) with .cfg, hidden(ids, mask), logits(h), and .pooling (its rule)."""
    ap = argparse.ArgumentParser(description=description)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("init", help="random-init checkpoint under HF state-dict names")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--format", choices=["safetensors", "bin"], default="safetensors")
    p.add_argument("--dtype", choices=list(ref_io.DTYPE_NAMES), default="float32")
    p.add_argument("--prefix", choices=["auto", "yes", "no"], default="auto",
                   help="base keys under the head model's prefix: as the config's class saves them (auto), or not")
    p.add_argument("--extras", action="store_true", help="also the tensors hub files carry that are ignored")
    p.add_argument("--legacy-names", action="store_true", help="LayerNorm.gamma / beta (old BERT checkpoints)")
    p = sub.add_parser("logits", help="float32 masked-LM logits at every position, one JSON line per input line")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p = sub.add_parser("embed", help="pooled sequence embedding, one JSON line per input line")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--pooling", choices=["auto", "first", "mean", "last"], default="auto")
    p = sub.add_parser("kv", help="each layer's keys and values of every input line's first --positions "
                       "positions (k.L, v.L: lines x heads x positions x head_dim) as safetensors, and the "
                       "masked-LM logits of every input line as `logits` prints them")
    p.add_argument("--model", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--positions", type=int, required=True)
    p.add_argument("--out", required=True)
    a = ap.parse_args()
    try:
        if a.cmd == "init":
            with open(a.config) as f:
                cfg = json.load(f)
            os.makedirs(a.out, exist_ok=True)
            sd = ref_io.random_state_dict(family.spec(cfg, a), a.seed, ref_io.DTYPE_NAMES[a.dtype])
            if hasattr(family, "tie_copies"):
                word = [k for k in sd if k.endswith("embeddings.word_embeddings.weight")][0]
                family.tie_copies(sd, word[:-len("embeddings.word_embeddings.weight")])
            ref_io.save_state_dict(a.out, sd, a.format)
            dst = os.path.join(a.out, "config.json")
            if os.path.abspath(a.config) != os.path.abspath(dst):
                shutil.copyfile(a.config, dst)
            return
        m = family.Model(a.model)
        rows = ref_io.read_jsonl(a.input)
        for n, (ids, _) in enumerate(rows, 1):
            ref_io.check_ids(ids, m, f"{a.input} line {n}")
        how = family.pooling if a.cmd == "embed" and a.pooling == "auto" else getattr(a, "pooling", None)
        if a.cmd == "kv":
            # What a prefix of P positions holds: bidirectional attention over [prefix ; x] gives x the
            # states a KV prefix equal to these keys and values gives it (positions counted from the prefix).
            # E's states depend on x too, so each input line has its own prefix.
            with torch.no_grad():
                per_row = []
                for ids, mask in rows:
                    kv = []
                    m.hidden(torch.tensor([ids]), None if mask is None else torch.tensor([mask]), kv)
                    per_row.append(kv)
                P = a.positions
                out = {}
                for n in range(len(per_row[0])):
                    out[f"k.{n}"] = torch.cat([kv[n][0][:, :, :P] for kv in per_row]).contiguous()
                    out[f"v.{n}"] = torch.cat([kv[n][1][:, :, :P] for kv in per_row]).contiguous()
                ref_io.write_safetensors(a.out, out)
            a.cmd = "logits"
        with torch.no_grad():
            for ids, mask in rows:
                x = torch.tensor([ids])
                am = None if mask is None else torch.tensor([mask])
                h = m.hidden(x, am)
                if a.cmd == "logits":
                    out = {"logits": m.logits(h)[0].to(torch.float32).tolist()}
                else:
                    out = {"embedding": pool(h, am, how)[0].to(torch.float32).tolist()}
                sys.stdout.write(json.dumps(out) + "\n")
    except (RefError, OSError) as e:
        print(f"{os.path.basename(sys.argv[0])}: {e}", file=sys.stderr)
        sys.exit(1)


class Bert(Family):
    pass


BERT = Bert()
BERT.spec = lambda c, args: spec(BERT, c, args)
BERT.Model = lambda d: Model(BERT, d)

if __name__ == "__main__":
    main(BERT, __doc__.splitlines()[0])
