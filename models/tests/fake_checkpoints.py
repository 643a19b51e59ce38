"""Small checkpoints in the published Hugging Face layouts (real key names and the real GPT-2
vocabulary; smaller widths), for the converter tests."""
import json
import os

import torch

from dlm.dit import DiT, DiTConfig


def write_mdlm_owt(out: str, fmt='bin', d_model=32, n_layers=2, n_heads=2, cond_dim=16, length=64,
                   seed=0) -> dict:
    torch.manual_seed(seed)
    cfg = DiTConfig(vocab_size=50258, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
                    cond_dim=cond_dim, max_length=length)
    m = DiT(cfg)
    with torch.no_grad():
        for p in m.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.05)
    sd = {'backbone.' + k: v for k, v in m.state_dict().items()}
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump({'model_type': 'mdlm', 'architectures': ['MDLM'], 'vocab_size': 50258,
                   'model_length': length, 'hidden_dim': d_model, 'cond_dim': cond_dim,
                   'n_blocks': n_layers, 'n_heads': n_heads, 'dropout': 0.1,
                   'time_conditioning': False}, f)
    if fmt == 'bin':
        torch.save(sd, os.path.join(out, 'pytorch_model.bin'))
    else:
        write_safetensors(sd, os.path.join(out, 'model.safetensors'))
    return sd


def write_safetensors(sd: dict, path: str):
    header, blobs, off = {}, [], 0
    for k, v in sd.items():
        b = v.detach().float().contiguous().numpy().tobytes()
        header[k] = {'dtype': 'F32', 'shape': list(v.shape), 'data_offsets': [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    with open(path, 'wb') as f:
        f.write(len(h).to_bytes(8, 'little'))
        f.write(h)
        for b in blobs:
            f.write(b)
