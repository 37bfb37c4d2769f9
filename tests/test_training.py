"""The trainable torch twin: canonical state_dict names, batches, autograd through every feature (checked against
finite differences), dropout where the config says, the load-balancing loss against its formula, the training
init, the schedule, determinism, and a few steps that make the loss fall on real text."""

import math

import numpy as np
import pytest
import torch

import gptoss_np
from gptoss_np import chain, get_config, scale_down
from gptoss_np.params import storage_shapes
from gptoss_torch.model import Model
from gptoss_torch.moe import load_balancing_loss
from gptoss_torch.train.data import random_batch, validation_batches
from gptoss_torch.train.init import init_for_training
from gptoss_torch.train.loop import TrainSettings, learning_rate, train, trainable_config

CONFIGS = chain() + [("qwen3-30b-a3b", get_config("qwen3-30b-a3b"))]
IDS = [n for n, _ in CONFIGS]


def small(cfg, **kw):
    return scale_down(cfg, window=4, **kw)


@pytest.mark.parametrize("name,cfg", CONFIGS, ids=IDS)
def test_state_dict_is_the_canonical_weight_dict(name, cfg):
    cfg = small(cfg)
    model = Model(cfg)
    sd = model.state_dict()
    want = storage_shapes(cfg)
    assert sorted(sd) == sorted(want)  # exactly the canonical names
    for n, (shape, kind) in want.items():
        assert tuple(sd[n].shape) == tuple(shape), n
        assert (sd[n].dtype == torch.uint8) == (kind == "uint8"), n
    packed = [n for n, t in sd.items() if t.dtype == torch.uint8]
    assert all(n.endswith((".blocks", ".scales")) for n in packed)
    assert not any(n in dict(model.named_parameters()) for n in packed)  # MXFP4 experts are buffers


@pytest.mark.parametrize("name,cfg", CONFIGS, ids=IDS)
def test_a_batch_equals_its_rows_one_by_one(name, cfg):
    cfg = small(cfg)
    model = Model.from_numpy(cfg, gptoss_np.init_weights(cfg, seed=2), dtype=torch.float64)
    tokens = torch.randint(0, cfg.vocab_size, (3, 11), generator=torch.Generator().manual_seed(0))
    batched, trace = model(tokens, trace=True)
    assert batched.shape == (3, 11, cfg.vocab_size)
    for b in range(3):
        row, row_trace = model(tokens[b], trace=True)
        assert (batched[b] - row).abs().max() <= 1e-12 * row.abs().max()
        assert set(trace) == set(row_trace) and trace["embed"][b].shape == row_trace["embed"].shape


def loss_of(model, x, y):
    return model.loss(x, y, aux_weight=0.1)[0]


@pytest.mark.parametrize("name,cfg", CONFIGS, ids=IDS)
def test_every_parameter_gets_the_gradient_finite_differences_give(name, cfg):
    """d loss / d theta along a random direction equals (L(theta + eps d) - L(theta - eps d)) / 2 eps in float64.
    Routing and the SwiGLU clamps are piecewise: a small eps stays inside one piece."""
    cfg = trainable_config(small(cfg, d_model=32, n_layers=2, head_dim=8)).replace(dropout=0.0)
    model = init_for_training(Model(cfg, dtype=torch.float64), seed=1)
    with torch.no_grad():  # make sinks, biases and norms non-trivial so their gradients matter
        for n, p in model.named_parameters():
            if n.endswith(("bias", "sinks")) or "norm" in n:
                p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(n)), dtype=p.dtype))
    g = torch.Generator().manual_seed(3)
    x = torch.randint(0, cfg.vocab_size, (2, 9), generator=g)
    y = torch.randint(0, cfg.vocab_size, (2, 9), generator=g)
    loss = loss_of(model, x, y)
    loss.backward()
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, missing
    assert all(p.grad.abs().sum() > 0 for n, p in params.items()), \
        [n for n, p in params.items() if p.grad.abs().sum() == 0]
    direction = {n: torch.randn(p.shape, generator=g, dtype=p.dtype) for n, p in params.items()}
    analytic = sum((p.grad * direction[n]).sum() for n, p in params.items())
    eps = 1e-6
    with torch.no_grad():
        for n, p in params.items():
            p.add_(eps * direction[n])
        up = loss_of(model, x, y)
        for n, p in params.items():
            p.sub_(2 * eps * direction[n])
        down = loss_of(model, x, y)
    numeric = (up - down) / (2 * eps)
    assert abs(float(numeric) - float(analytic)) <= 1e-6 * max(1.0, abs(float(analytic))), (numeric, analytic)


def test_dropout_is_applied_in_training_mode_only():
    cfg = small(get_config("00-gpt2-xl"))
    assert cfg.dropout == 0.1
    model = init_for_training(Model(cfg), seed=0)
    x = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    model.train()
    a, b = model(x), model(x)
    assert not torch.equal(a, b)  # dropout draws new masks
    model.eval()
    assert torch.equal(model(x), model(x))
    oracle = gptoss_np.Model(cfg, model.canonical_weights())
    np.testing.assert_allclose(model(x[0]).detach().numpy(), oracle(x[0].numpy()), rtol=1e-4, atol=1e-4)
    no_drop = init_for_training(Model(cfg.replace(dropout=0.0)), seed=0).train()
    assert torch.equal(no_drop(x), no_drop(x))  # the 01-no-dropout step: training mode changes nothing


def test_load_balancing_loss_matches_its_formula():
    """E * sum_e f_e P_e computed here in NumPy from its definition (Fedus et al. 2021, eq. 4)."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((50, 8))
    experts = np.argsort(-logits, axis=-1)[:, :2]
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    f = np.bincount(experts.reshape(-1), minlength=8) / experts.size
    want = 8 * (f * p.mean(0)).sum()
    got = load_balancing_loss(torch.tensor(logits), torch.tensor(experts), 8)
    assert abs(float(got) - want) < 1e-12
    uniform = load_balancing_loss(torch.zeros(8, 8), torch.arange(8)[:, None].repeat(1, 2) % 8, 8)
    assert abs(float(uniform) - 1.0) < 1e-12  # balanced routing and uniform probabilities: 1


def test_training_init_follows_gpt2():
    cfg = small(get_config("07-sinks"), d_model=128, n_layers=4, head_dim=32)
    model = init_for_training(Model(cfg), seed=0)
    sd = {n: p.detach() for n, p in model.named_parameters()}
    assert abs(float(sd["layers.0.attn.q.weight"].std()) - 0.02) < 0.002
    assert abs(float(sd["layers.0.attn.o.weight"].std()) - 0.02 / math.sqrt(8)) < 0.001  # residual projections
    assert float(sd["layers.0.attn.sinks"].abs().max()) == 0.0 and float(sd["final_norm.weight"].min()) == 1.0
    again = init_for_training(Model(cfg), seed=0)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))


def test_schedule_warms_up_then_decays_to_its_floor():
    s = TrainSettings(steps=100, warmup=10, lr=1e-3, min_lr_ratio=0.1)
    lrs = [learning_rate(i, s) for i in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(1e-4, rel=0.01)


def test_batches():
    tokens = torch.arange(1000)
    x, y = random_batch(tokens, 4, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16) and torch.equal(y, x + 1)
    val = validation_batches(tokens, 4, 16, max_batches=2)
    assert len(val) == 2 and torch.equal(val[0][0][1], torch.arange(16, 32))


@pytest.fixture(scope="module")
def shakespeare_bytes():
    from gptoss_np.text.corpus import encode_bytes, shakespeare_splits
    train_text, val_text = shakespeare_splits()
    return (torch.from_numpy(encode_bytes(train_text[:400_000]).astype(np.int64)),
            torch.from_numpy(encode_bytes(val_text[:60_000]).astype(np.int64)))


def test_training_is_deterministic_and_the_loss_falls(shakespeare_bytes):
    train_tokens, val_tokens = shakespeare_bytes
    cfg = scale_down(get_config("gpt-oss-20b"), d_model=64, n_layers=2, head_dim=16, window=16)
    s = TrainSettings(steps=30, batch_size=8, context=64, warmup=5, eval_every=15, eval_batches=2, seed=4,
                      threads=1)
    _, h1 = train(cfg, train_tokens, val_tokens, s, progress=False)
    _, h2 = train(cfg, train_tokens, val_tokens, s, progress=False)
    assert [r["loss"] for r in h1] == [r["loss"] for r in h2]  # same seed, same losses, bit for bit
    assert h1[0]["ce"] > 5.0 and h1[-1]["val_loss"] < 3.6  # from ~ln(256) = 5.55 to below unigram entropy + 0.25
    assert h1[-1]["val_loss"] < h1[14]["val_loss"]


def test_rope_beats_learned_positions_by_more_than_the_seed_noise(shakespeare_bytes):
    """The ladder's clearest result, in miniature: steps 02 (learned positions) and 03 (RoPE) at a tiny scale,
    three seeds each; the gap between the means must exceed twice the standard error of the difference."""
    from gptoss_torch.train.ladder import ladder_config, mean_std
    train_tokens, val_tokens = shakespeare_bytes
    s = dict(steps=80, batch_size=8, context=128, warmup=8, eval_every=80, eval_batches=4, threads=1)
    losses = {}
    for step in ("02-rmsnorm", "03-rope"):
        cfg = ladder_config(step).replace(d_model=64, n_layers=2, head_dim=16, ffn_hidden=256,
                                          layer_windows=(None, None))
        losses[step] = [train(cfg, train_tokens, val_tokens, TrainSettings(seed=seed, **s), progress=False)[1][-1]
                        ["val_loss"] for seed in range(3)]
    (m2, s2), (m3, s3) = mean_std(losses["02-rmsnorm"]), mean_std(losses["03-rope"])
    se = math.sqrt(s2 ** 2 / 3 + s3 ** 2 / 3)
    assert m2 - m3 > 2 * se, losses


def test_loss_is_cross_entropy_plus_the_weighted_mean_balance_loss_over_the_moe_layers():
    """Model.loss(x, y, w) = CE + w * (1/L) sum_l B_l, as its docstring says, recomputed here from the router logits
    of the trace: CE = F.cross_entropy over the [B*T] positions (targets -100 ignored); per MoE layer l, with router
    logits z [N, E] over the N = B*T tokens, its top-k experts (the k largest logits) and p = softmax(z) over all E
    experts, B_l = E * sum_e f_e * P_e (Switch Transformer eq. 4, top-k), f_e = (slots of the N*k that chose e) /
    (N*k), P_e = mean_t p_te; 1 for perfectly uniform routing."""
    import torch.nn.functional as F
    cfg = trainable_config(small(get_config("gpt-oss-20b"), d_model=32, n_layers=3, head_dim=8)).replace(dropout=0.0)
    model = init_for_training(Model(cfg, dtype=torch.float64), seed=5)
    with torch.no_grad():  # a router far from uniform, so the balance loss is well away from 1 and differs per layer
        for i, block in enumerate(model.layers):
            block.mlp.router.weight.mul_(20.0 * (i + 1))
    g = torch.Generator().manual_seed(6)
    x = torch.randint(0, cfg.vocab_size, (3, 10), generator=g)
    y = torch.randint(0, cfg.vocab_size, (3, 10), generator=g)
    y[0, :4] = -100  # masked positions carry no loss
    with torch.no_grad():
        logits, trace = model(x, trace=True)
    ce = F.cross_entropy(logits.reshape(-1, cfg.vocab_size), y.reshape(-1), ignore_index=-100)
    E, k = cfg.n_experts, cfg.top_k
    per_layer = []
    for i in range(cfg.n_layers):
        z = trace[f"layers.{i}.router.logits"].reshape(-1, E)  # [N, E]
        chosen = torch.argsort(z, dim=-1, descending=True)[:, :k]  # [N, k]
        f = torch.stack([(chosen == e).sum() for e in range(E)]).double() / chosen.numel()  # [E]
        p = torch.exp(z - z.max(-1, keepdim=True).values)
        p = p / p.sum(-1, keepdim=True)  # [N, E]
        per_layer.append(E * (f * p.mean(0)).sum())
    balance = sum(per_layer) / len(per_layer)
    assert max(abs(float(b) - 1.0) for b in per_layer) > 0.05  # the term is not a constant 1 here
    for w in (0.0, 0.5, 2.0):
        total, parts = model.loss(x, y, aux_weight=w)
        total = total.detach()
        assert abs(float(parts["ce"]) - float(ce)) < 1e-12
        assert abs(float(parts["aux"]) - float(balance)) < 1e-12
        assert abs(float(total) - float(ce + w * balance)) < 1e-12, (w, float(total), float(ce), float(balance))


def decays_by_rule(name):
    """nanoGPT's convention, which param_groups follows (but for the stacked expert biases: the next test):
    weight decay on the matrices of linear maps and on the embedding tables (token, learned positions, unembedding),
    nothing on norm weights and biases, biases of any shape, or attention sinks. Decided by the canonical name, not
    the shape."""
    module, _, leaf = name.rpartition(".")
    if leaf in ("bias", "sinks"):
        return False
    assert leaf == "weight", name
    return "norm" not in module.rpartition(".")[2]  # attn_norm, ffn_norm, final_norm, q_norm, k_norm: no decay


def groups_by_name(model, weight_decay):
    from gptoss_torch.train.loop import param_groups
    groups = param_groups(model, weight_decay)
    ids = {id(p): n for n, p in model.named_parameters()}
    got = {}
    for group in groups:
        for p in group["params"]:
            assert ids[id(p)] not in got, ids[id(p)]  # each parameter in one group only
            got[ids[id(p)]] = group["weight_decay"]
    assert sorted(got) == sorted(ids.values())  # every trainable parameter in some group
    return got


@pytest.mark.parametrize("name,cfg", CONFIGS, ids=IDS)
def test_weight_decay_goes_to_matrices_and_embeddings_only(name, cfg):
    """Each parameter's weight decay from param_groups against decays_by_rule (0.0 where the rule says no). The
    stacked MoE expert biases [E, out] are left to the next test."""
    model = Model(trainable_config(small(cfg)))
    got = groups_by_name(model, 0.25)
    checked = {n: wd for n, wd in got.items() if not n.endswith(("experts.up.bias", "experts.down.bias"))}
    want = {n: (0.25 if decays_by_rule(n) else 0.0) for n in checked}
    assert checked == want, {n: (checked[n], want[n]) for n in checked if checked[n] != want[n]}
    assert 0.25 in want.values() and 0.0 in want.values()


@pytest.mark.xfail(strict=True, reason="param_groups decays by shape (dim >= 2): the stacked expert biases "
                                       "[E, out] are 2-D and get weight decay, against nanoGPT's no-decay-on-biases "
                                       "intent; kept, as its docstring says, because the shipped models and the "
                                       "ladder were trained so (fixing it means retraining them)")
def test_stacked_expert_biases_get_no_weight_decay():
    model = Model(trainable_config(small(get_config("gpt-oss-20b"))))
    got = groups_by_name(model, 0.25)
    biases = {n: wd for n, wd in got.items() if n.endswith(("experts.up.bias", "experts.down.bias"))}
    assert biases and all(wd == 0.0 for wd in biases.values()), biases


def test_a_training_step_clips_the_gradient_to_the_configured_norm():
    """One step of train() against the step written out here: g = grad of the loss, clipped to total norm c
    (g * min(1, c / (||g||_2 + 1e-6)), ||g|| over all parameters, as torch.nn.utils.clip_grad_norm_ defines it), then
    AdamW's first step without weight decay: p - lr * g / (|g| + eps) (m_hat = g, sqrt(v_hat) = |g|). c is chosen so
    the clipped entries are of the order of eps = 1e-8: then the update depends on c itself (unclipped, it would be
    lr * sign(g) almost everywhere). Float64; every training window is the same (a split of context + 2 tokens)."""
    import copy
    cfg = trainable_config(small(get_config("gpt-oss-20b"), d_model=32, n_layers=2, head_dim=8)).replace(dropout=0.0)
    model = init_for_training(Model(cfg, dtype=torch.float64), seed=7)
    ref = copy.deepcopy(model).train()
    context = 12
    tokens = torch.randint(0, cfg.vocab_size, (context + 2,), generator=torch.Generator().manual_seed(8))
    n_params = sum(p.numel() for p in model.parameters())
    clip = 1e-8 * math.sqrt(n_params)
    s = TrainSettings(steps=1, batch_size=2, context=context, lr=1e-2, min_lr_ratio=1.0, warmup=0, weight_decay=0.0,
                      grad_clip=clip, aux_weight=0.01, eval_every=1, eval_batches=1, seed=0)
    trained, _ = train(cfg, tokens, tokens, s, progress=False, model=model)
    x = tokens[:context].repeat(2, 1)  # [2, T]: random_batch's only possible window (start 0)
    y = tokens[1:context + 1].repeat(2, 1)
    loss, _ = ref.loss(x, y, s.aux_weight)
    loss.backward()
    params = dict(ref.named_parameters())
    norm = math.sqrt(sum(float((p.grad ** 2).sum()) for p in params.values()))
    assert norm > 1e3 * clip  # the clip is active
    coef = min(1.0, clip / (norm + 1e-6))
    after = dict(trained.named_parameters())
    with torch.no_grad():
        for n, p in params.items():
            g = p.grad * coef
            want = p - s.lr * g / (g.abs() + 1e-8)
            assert torch.allclose(after[n], want, rtol=1e-9, atol=1e-12), n
        step = max(float((after[n] - p).abs().max()) for n, p in params.items())
    assert 0.1 * s.lr < step < 0.99 * s.lr  # clipped entries near eps: updates well below lr * sign(g)
