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


def e2d2_owt_state_dict(d_model=32, enc_layers=2, dec_layers=1, n_heads=4, n_kv_heads=2, head_dim=16, d_ff=64,
                        vocab=50258, tied=True, seed=0) -> dict:
    """Tensors under the names the published E2D2 (LLMasEncoderDecoder over Qwen3 layers) saves,
    built by name and shape, not from our module. Norm weights scatter around 1 so that a norm
    left out or swapped changes the output."""
    g = torch.Generator().manual_seed(seed)

    def w(*shape, std=0.08):
        return torch.randn(*shape, generator=g) * std

    def norm(n):
        return 1 + w(n, std=0.2)

    sd = {}
    for side, n in (('encoder', enc_layers), ('decoder', dec_layers)):
        for i in range(n):
            p = f'backbone.{side}.model.layers.{i}.'
            sd.update({p + 'self_attn.q_proj.weight': w(n_heads * head_dim, d_model),
                       p + 'self_attn.k_proj.weight': w(n_kv_heads * head_dim, d_model),
                       p + 'self_attn.v_proj.weight': w(n_kv_heads * head_dim, d_model),
                       p + 'self_attn.o_proj.weight': w(d_model, n_heads * head_dim),
                       p + 'self_attn.q_norm.weight': norm(head_dim), p + 'self_attn.k_norm.weight': norm(head_dim),
                       p + 'mlp.gate_proj.weight': w(d_ff, d_model), p + 'mlp.up_proj.weight': w(d_ff, d_model),
                       p + 'mlp.down_proj.weight': w(d_model, d_ff),
                       p + 'input_layernorm.weight': norm(d_model), p + 'post_attention_layernorm.weight': norm(d_model)})
        sd[f'backbone.{side}.model.norm.weight'] = norm(d_model)
    embed = w(vocab, d_model, std=0.5)
    sd['backbone.encoder.model.embed_tokens.weight'] = embed
    if tied:  # the decoder's lm_head is the encoder's, which is the embedding (one tensor, three names)
        sd['backbone.encoder.lm_head.weight'] = embed
        sd['backbone.decoder.lm_head.weight'] = embed
    else:
        sd['backbone.decoder.lm_head.weight'] = w(vocab, d_model, std=0.5)
    return sd


def e2d2_owt_config(sd: dict, length=64, block_size=4) -> dict:
    """config.json as E2D2Config.save_pretrained writes it for the OWT run (sizes from sd)."""
    layers = lambda side: len({k.split('.')[4] for k in sd if k.startswith(f'backbone.{side}.model.layers.')})  # noqa: E731
    V, D = sd['backbone.encoder.model.embed_tokens.weight'].shape
    tok = {'vocab_size': V, 'mask_token_id': 50257, 'bos_token_id': 50256, 'pad_token_id': 50256,
           'eos_token_id': 50256, 'pad_vocab_size_multiple': 1}
    return {'model_type': 'e2d2', 'architectures': ['E2D2'], 'length': length, 'block_size': block_size,
            'eval_block_size': block_size, 'T': 0, 'diffusion_type': 'absorbing', 'attn_backend': 'flex_attention',
            'time_conditioned_backbone': False, 'tokenizer_name': 'gpt2', 'tokenization_config': tok, **tok,
            'noise_config': {'_target_': 'noise_schedule_noise_schedules.LinearNoise'},
            'backbone_config': {'_target_': 'backbone_encoder_decoder.LLMasEncoderDecoder',
                                'pretrained_model_name_or_path': 'Qwen/Qwen3-0.6B-Base', 'max_length': length,
                                'attn_backend': 'flex_attention', 'use_encoder_causal_mask': False,
                                'num_encoder_layers': layers('encoder'), 'num_decoder_layers': layers('decoder'),
                                'tie_encoder_decoder_weights': False, 'reinit_encoder': True, 'reinit_decoder': True,
                                'keep_top_encoder_layers': False, 'keep_top_decoder_layers': False,
                                'hidden_size': D, 'intermediate_size': sd['backbone.encoder.model.layers.0.mlp.gate_proj.weight'].shape[0],
                                'vocab_size': V}}


def write_e2d2_owt(out: str, fmt='bin', length=64, block_size=4, **dims) -> dict:
    """A Hugging Face directory (config.json + pytorch_model.bin or model.safetensors), or with
    fmt='composer' a Composer checkpoint file out/ckpt.pt (keys under model.backbone._orig_mod.,
    the EMA weights, each weight + 0.01, under state.algorithms). Returns the published state dict."""
    sd = e2d2_owt_state_dict(**dims)
    os.makedirs(out, exist_ok=True)
    if fmt == 'composer':
        model = {k.replace('backbone.', 'model.backbone._orig_mod.', 1): v for k, v in sd.items()}
        ema = {k.replace('backbone.', 'backbone._orig_mod.', 1): v + 0.01 for k, v in sd.items()}
        torch.save({'state': {'model': model, 'algorithms': [('EMA', {'ema_model': {'named_parameters_dict': ema}})]}},
                   os.path.join(out, 'ckpt.pt'))
        return sd
    with open(os.path.join(out, 'config.json'), 'w') as f:
        json.dump(e2d2_owt_config(sd, length, block_size), f)
    if fmt == 'bin':
        torch.save(sd, os.path.join(out, 'pytorch_model.bin'))
    else:  # safetensors holds one name per shared tensor (save_pretrained drops the aliases)
        embed = sd['backbone.encoder.model.embed_tokens.weight']
        write_safetensors({k: v for k, v in sd.items() if not (k.endswith('lm_head.weight') and v is embed)},
                          os.path.join(out, 'model.safetensors'))
    return sd
