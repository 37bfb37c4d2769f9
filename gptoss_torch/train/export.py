"""After training: MXFP4-encode the experts (the storage format of the released model, applied to trained float
weights) and write a trained model as a real checkpoint."""

import numpy as np
import torch

from gptoss_np.errors import ConfigError
from gptoss_np.formats.writer import family, mxfp4_encode_fast, write_checkpoint

from ..model import Model


def quantize_experts(model):
    """A copy of `model` whose expert matrices are stored as MXFP4 (blocks + scales, the package's encoder,
    round-to-nearest-even E2M1 with the block scale of gptoss_np.mxfp4) and decoded on use, as gpt-oss ships them.
    Returns an eval-mode Model of cfg.replace(expert_quant="mxfp4")."""
    cfg = model.cfg
    if cfg.ffn != "moe":
        raise ConfigError(f"{cfg.name}: only MoE experts are stored in MXFP4; this config has a dense FFN")
    weights = {}
    for name, t in model.state_dict().items():
        if name.endswith(("experts.up.weight", "experts.down.weight")):
            w = t.detach().float().cpu().numpy()  # [E, out, in]
            E, rows, cols = w.shape
            blocks = np.empty((E, rows, cols // 32, 16), np.uint8)
            scales = np.empty((E, rows, cols // 32), np.uint8)
            for e in range(E):
                mxfp4_encode_fast(w[e], blocks[e], scales[e])
            base = name[: -len(".weight")]
            weights[base + ".blocks"] = torch.from_numpy(blocks).to(t.device)
            weights[base + ".scales"] = torch.from_numpy(scales).to(t.device)
        else:
            weights[name] = t.detach()
    return Model.from_tensors(cfg.replace(expert_quant="mxfp4"), weights, model.device, model.dtype)


def checkpoint_layout(cfg):
    """'hf' when a published layout holds the config (GPT-2, gpt-oss, Qwen3-MoE), else this project's 'canonical'."""
    try:
        family(cfg)
        return "hf"
    except ConfigError:
        return "canonical"


def harmony_token_ids(ranks):
    """config.json's special-token ids for a BPE with the harmony specials (gpt-oss's choices): bos <|startoftext|>,
    eos <|return|>, <|endoftext|>, <|call|>, pad <|endoftext|>; and GPT-2's one choice for all three,
    endoftext <|endoftext|>."""
    from gptoss_np.text.bpe import special_token_ids
    ids = special_token_ids(ranks)
    return {"bos": ids["<|startoftext|>"], "eos": [ids["<|return|>"], ids["<|endoftext|>"], ids["<|call|>"]],
            "pad": ids["<|endoftext|>"], "endoftext": ids["<|endoftext|>"]}


def write_trained(model, out_dir, cfg=None, layout=None, ranks=None, overwrite=True, progress=False):
    """Write `model`'s weights as a checkpoint of `cfg` (default: model.cfg) in `layout` (default: the published
    layout that holds the config, else the canonical one). For an MXFP4 cfg the float experts are encoded on the way
    (or written as they are when the model holds them packed). With `ranks` (a trained BPE) its tokenizer files are
    written beside the weights and config.json names its special tokens. Returns (out_dir, layout)."""
    cfg = cfg or model.cfg
    layout = layout or checkpoint_layout(cfg)
    token_ids = None
    if ranks is not None:
        from gptoss_np.text.bpe import write_tokenizer_files
        token_ids = harmony_token_ids(ranks)
    write_checkpoint(cfg, out_dir, layout=layout, weights=model.canonical_weights(), token_ids=token_ids,
                     overwrite=overwrite, progress=progress)
    if ranks is not None:
        write_tokenizer_files(ranks, out_dir)
    return out_dir, layout
