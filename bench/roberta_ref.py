#!/usr/bin/python3
"""PyTorch-eager reference of Hugging Face RobertaModel / RobertaForMaskedLM (roberta-base/large,
microsoft/codebert-base), written from transformers' modeling_roberta.py for tests of the C++ runtime.

RoBERTa is BERT's encoder (bert_ref.py: embeddings, eager attention with the finfo.min mask, post-LN layers)
with these differences, each from modeling_roberta.py:
- position ids from create_position_ids_from_input_ids: mask = ids != padding_idx (pad_token_id, default 1),
  (cumsum(mask, 1) * mask) + padding_idx, so real tokens count from padding_idx + 1 and pad tokens sit at
  padding_idx, whatever the attention mask says;
- the MLM head lm_head: dense -> gelu (the exact erf GELU, whatever hidden_act) -> layer_norm (layer_norm_eps) ->
  decoder tied to roberta.embeddings.word_embeddings, plus lm_head.bias (the decoder's bias is that parameter);
- keys: RobertaForMaskedLM saves "roberta." + the base keys and lm_head.*; RobertaModel the base keys (and its
  pooler, unused here). Hub files may carry lm_head.decoder.weight / .bias copies, which are ignored.

  roberta_ref.py init   --config CONFIG.json --out DIR --seed S [--format safetensors|bin] [--prefix auto|yes|no] [--extras]
  roberta_ref.py logits --model DIR --input INPUTS.jsonl
  roberta_ref.py embed  --model DIR --input INPUTS.jsonl [--pooling auto|first|mean|last]
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_ref  # noqa: E402


class RobertaConfig(bert_ref.Config):
    PAD = 1


class Roberta(bert_ref.Family):
    name = "roberta"
    prefix = "roberta."
    config = RobertaConfig
    head = "lm_head."
    head_dense, head_norm = "dense", "layer_norm"
    pooling = "first"

    def head_act(self, cfg):
        return torch.nn.functional.gelu  # transformers.activations.gelu: GELUActivation, erf form

    def position_ids(self, ids, cfg):
        mask = ids.ne(cfg.pad).int()
        incremental = torch.cumsum(mask, dim=1).type_as(mask) * mask
        return incremental.long() + cfg.pad

    def extras(self, cfg, pre):
        out = super().extras(cfg, pre)
        out = [t for t in out if not t[0].startswith("cls.")]
        if cfg.mlm:
            out += [("lm_head.decoder.weight", [cfg.V, cfg.d], "weight"), ("lm_head.decoder.bias", [cfg.V], "bias")]
        return out

    def tie_copies(self, sd, pre):
        # the tied parameters' copies hold the same values, as in the hub's pytorch_model.bin
        if "lm_head.decoder.weight" in sd:
            sd["lm_head.decoder.weight"] = sd[pre + "embeddings.word_embeddings.weight"].clone()
            sd["lm_head.decoder.bias"] = sd["lm_head.bias"].clone()


ROBERTA = Roberta()
ROBERTA.spec = lambda c, args: bert_ref.spec(ROBERTA, c, args)
ROBERTA.Model = lambda d: bert_ref.Model(ROBERTA, d)

if __name__ == "__main__":
    bert_ref.main(ROBERTA, __doc__.splitlines()[0])
