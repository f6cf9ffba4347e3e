"""Train a small class-conditional DiT on scikit-learn's digits and export it to ONNX.

The model is DiT (Peebles & Xie 2023, "Scalable Diffusion Models with Transformers") scaled
down to 8x8 greyscale images: patch size 2 (16 tokens), adaLN-Zero blocks, epsilon
prediction under the DDPM linear schedule (T = 1000). It is trained with JAX on the CPU and
written to ONNX by hand with ``onnx.helper``, so that every weight product is a plain
``MatMul`` (token-wise layers) or ``Gemm`` (the conditioning path) with a constant weight,
and attention is ``MatMul(Q, K^T)`` -> ``Softmax`` -> ``MatMul(P, V)``: the form ``ditto
trace`` captures (jax2onnx would emit Einsum nodes with arbitrary equations).

The script then checks the file: onnxruntime must agree with the JAX forward; and a
classifier trained on real digits labels samples of the exported model, drawn with the
sampler 'ditto trace' runs on it (the dit-digits spec, 20 DDIM steps), which should be
recognised as their conditioning class about as often as held-out real digits are as theirs
(both accuracies are printed). It saves a grid of the samples.

Usage::

    python scripts/train_dit.py [--steps N] [--out sim/models/dit_digits.onnx]
    python scripts/train_dit.py --evaluate-only    # the quality check of the committed file

Same seeds, same steps: the same weights, and the same file byte for byte.
"""

import argparse
import math
import sys
import time
from collections import Counter
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import onnx
import onnxruntime as ort
from jax.example_libraries import optimizers
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from ditto.sim.capture import sample

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "sim" / "models" / "dit_digits.onnx"
SAMPLES_PNG = ROOT / "docs" / "img" / "dit-digits-samples.png"

# The images: scikit-learn's digits, 1 channel of 8x8, cut into 2x2 patches.
CHANNELS, SIZE, PATCH = 1, 8, 2
GRID = SIZE // PATCH                     # 4x4 patches
TOKENS = GRID * GRID                     # 16
PATCH_DIM = PATCH * PATCH * CHANNELS     # 4 values per token
CLASSES = 10

# The transformer. D = 64, depth 4, 4 heads of 16 holds about 0.3 M parameters: 1.3 MB of
# float32, under the 2 MB budget of the committed file, and fast enough on 2 cores.
WIDTH, DEPTH, HEADS = 64, 4, 4
HEAD_DIM = WIDTH // HEADS
MLP_RATIO = 4
FREQ_DIM = 128                           # sinusoidal timestep features (DiT: 256)
LN_EPS = 1e-6                            # DiT's LayerNorm epsilon

# DDPM: the linear beta schedule of Ho et al., epsilon prediction.
T_STEPS = 1000
BETAS = np.linspace(1e-4, 0.02, T_STEPS, dtype=np.float64)
ALPHAS_CUMPROD = np.cumprod(1.0 - BETAS)

# Training. Adam at 1e-3 after a short warmup, cosine decay to a tenth; the exported weights
# are an exponential moving average (as in DiT), which smooths the last steps' noise.
BATCH = 128
LR, LR_FINAL, WARMUP = 1e-3, 1e-4, 200
EMA_DECAY = 0.999
DEFAULT_STEPS = 6000                     # 9 to 10 minutes on 2 cores (0.09-0.1 s a step)
SEED = 0
LOG_EVERY = 250

OPSET = 20                               # 20: Gelu (tanh approximation) as one node


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_digits_scaled() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as float32 [N, 1, 8, 8] in [-1, 1] (x / 8 - 1), and int64 labels."""
    digits = load_digits()
    images = (digits.images / 8.0 - 1.0).astype(np.float32)[:, None]
    return images, digits.target.astype(np.int64)


# --- Fixed embeddings, shared by the JAX model and the ONNX graph ---------------------------

def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """DiT's 1-D sin-cos embedding: [len(positions), dim], sines then cosines."""
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    angles = np.outer(positions.reshape(-1), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def position_embedding() -> np.ndarray:
    """DiT's fixed 2-D sin-cos position embedding of the 4x4 patches: float32 [1, 16, D];
    half the channels encode the column, half the row (token order is row-major)."""
    rows, cols = np.meshgrid(np.arange(GRID), np.arange(GRID), indexing="ij")
    table = np.concatenate([sincos_1d(WIDTH // 2, cols), sincos_1d(WIDTH // 2, rows)], axis=1)
    return table.astype(np.float32)[None]


def timestep_frequencies() -> np.ndarray:
    """The frequencies of DiT's TimestepEmbedder: float32 [1, FREQ_DIM / 2], max period 1e4;
    the features of t are cos(t f) then sin(t f)."""
    half = FREQ_DIM // 2
    return np.exp(-math.log(10000) * np.arange(half, dtype=np.float64) / half)[None].astype(
        np.float32)


# --- The model in JAX -----------------------------------------------------------------------

def init_params(key) -> dict:
    """DiT's initialisation, as a flat dict named like the ONNX initializers. Weights are
    [in, out] (y = x W + b). Xavier-uniform linear layers, N(0, 0.02) for the timestep MLP
    and the class table, and adaLN-Zero: every modulation layer and the final linear layer
    start at zero, so each block starts as the identity."""
    keys = iter(jax.random.split(key, 64))
    params = {}

    def linear(name, fan_in, fan_out, init="xavier"):
        if init == "xavier":
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            weight = jax.random.uniform(next(keys), (fan_in, fan_out), jnp.float32, -limit, limit)
        elif init == "normal":
            weight = 0.02 * jax.random.normal(next(keys), (fan_in, fan_out), jnp.float32)
        else:
            weight = jnp.zeros((fan_in, fan_out), jnp.float32)
        params[f"{name}.weight"] = weight
        params[f"{name}.bias"] = jnp.zeros((fan_out,), jnp.float32)

    linear("patch_embed", PATCH_DIM, WIDTH)
    linear("t_embed.fc1", FREQ_DIM, WIDTH, "normal")
    linear("t_embed.fc2", WIDTH, WIDTH, "normal")
    params["y_embed.weight"] = 0.02 * jax.random.normal(next(keys), (CLASSES, WIDTH))
    for block in range(DEPTH):
        prefix = f"blocks.{block}"
        linear(f"{prefix}.adaLN", WIDTH, 6 * WIDTH, "zero")
        linear(f"{prefix}.attn.qkv", WIDTH, 3 * WIDTH)
        linear(f"{prefix}.attn.proj", WIDTH, WIDTH)
        linear(f"{prefix}.mlp.fc1", WIDTH, MLP_RATIO * WIDTH)
        linear(f"{prefix}.mlp.fc2", MLP_RATIO * WIDTH, WIDTH)
    linear("final.adaLN", WIDTH, 2 * WIDTH, "zero")
    linear("final.linear", WIDTH, PATCH_DIM, "zero")
    return params


def forward(params: dict, x, t, y):
    """The DiT's epsilon: x float32 [B, 1, 8, 8], t float32 [B], y int [B] -> [B, 1, 8, 8].
    The ONNX graph of ``export_onnx`` computes the same function op for op."""
    def dense(h, name):
        return h @ params[f"{name}.weight"] + params[f"{name}.bias"]

    def layer_norm(h):
        mean = h.mean(-1, keepdims=True)
        var = ((h - mean) ** 2).mean(-1, keepdims=True)
        return (h - mean) / jnp.sqrt(var + LN_EPS)

    def modulate(h, shift, scale):
        return layer_norm(h) * (1 + scale) + shift

    batch = x.shape[0]
    patches = x.reshape(batch, CHANNELS, GRID, PATCH, GRID, PATCH).transpose(0, 2, 4, 3, 5, 1)
    h = dense(patches.reshape(batch, TOKENS, PATCH_DIM), "patch_embed") + position_embedding()

    angles = t[:, None] * timestep_frequencies()
    t_features = jnp.concatenate([jnp.cos(angles), jnp.sin(angles)], axis=1)
    t_emb = dense(jax.nn.silu(dense(t_features, "t_embed.fc1")), "t_embed.fc2")
    cond = jax.nn.silu(t_emb + params["y_embed.weight"][y])[:, None, :]   # [B, 1, D]

    for block in range(DEPTH):
        prefix = f"blocks.{block}"
        shift1, scale1, gate1, shift2, scale2, gate2 = jnp.split(
            dense(cond, f"{prefix}.adaLN"), 6, axis=-1)
        q, k, v = jnp.split(dense(modulate(h, shift1, scale1), f"{prefix}.attn.qkv"), 3, -1)
        q, k, v = (a.reshape(batch, TOKENS, HEADS, HEAD_DIM) for a in (q, k, v))
        q = q.transpose(0, 2, 1, 3) * (1.0 / math.sqrt(HEAD_DIM))
        scores = q @ k.transpose(0, 2, 3, 1)                          # [B, H, 16, 16]
        heads = jax.nn.softmax(scores, axis=-1) @ v.transpose(0, 2, 1, 3)
        attn = heads.transpose(0, 2, 1, 3).reshape(batch, TOKENS, WIDTH)
        h = h + gate1 * dense(attn, f"{prefix}.attn.proj")
        hidden = jax.nn.gelu(dense(modulate(h, shift2, scale2), f"{prefix}.mlp.fc1"),
                             approximate=True)
        h = h + gate2 * dense(hidden, f"{prefix}.mlp.fc2")

    shift, scale = jnp.split(dense(cond, "final.adaLN"), 2, axis=-1)
    out = dense(modulate(h, shift, scale), "final.linear")            # [B, 16, 4]
    out = out.reshape(batch, GRID, GRID, PATCH, PATCH, CHANNELS).transpose(0, 5, 1, 3, 2, 4)
    return out.reshape(batch, CHANNELS, SIZE, SIZE)


def learning_rate(steps: int):
    """The schedule of a ``steps``-step run, a function of the step index: linear warmup over
    WARMUP steps, then cosine decay from LR to LR_FINAL at the last step."""
    def rate(step):
        progress = jnp.clip((step - WARMUP) / max(steps - WARMUP, 1), 0.0, 1.0)
        cosine = LR_FINAL + 0.5 * (LR - LR_FINAL) * (1 + jnp.cos(jnp.pi * progress))
        return jnp.where(step < WARMUP, LR * (step + 1) / WARMUP, cosine)

    return rate


def train(steps: int) -> tuple[dict, float, float]:
    """Train for ``steps`` Adam steps of BATCH images; return the EMA weights (as float32
    NumPy arrays), the mean loss of the last 500 steps, and the wall time in seconds."""
    images, labels = load_digits_scaled()
    images, labels = jnp.asarray(images), jnp.asarray(labels)
    abar = jnp.asarray(ALPHAS_CUMPROD, jnp.float32)
    key = jax.random.PRNGKey(SEED)
    key, init_key = jax.random.split(key)
    params = init_params(init_key)
    log(f"DiT: D={WIDTH}, depth {DEPTH}, {HEADS} heads; "
        f"{sum(p.size for p in params.values())} parameters; {steps} steps of {BATCH}")
    opt_init, opt_update, get_params = optimizers.adam(learning_rate(steps))

    def loss_fn(params, key):
        k_index, k_t, k_noise = jax.random.split(key, 3)
        index = jax.random.randint(k_index, (BATCH,), 0, images.shape[0])
        t = jax.random.randint(k_t, (BATCH,), 0, T_STEPS)
        noise = jax.random.normal(k_noise, (BATCH, CHANNELS, SIZE, SIZE))
        a = abar[t][:, None, None, None]
        x_t = jnp.sqrt(a) * images[index] + jnp.sqrt(1 - a) * noise
        eps = forward(params, x_t, t.astype(jnp.float32), labels[index])
        return jnp.mean((eps - noise) ** 2)

    @jax.jit
    def step(i, opt_state, ema, key):
        loss, grads = jax.value_and_grad(loss_fn)(get_params(opt_state), key)
        opt_state = opt_update(i, grads, opt_state)
        ema = jax.tree.map(lambda e, p: EMA_DECAY * e + (1 - EMA_DECAY) * p,
                           ema, get_params(opt_state))
        return opt_state, ema, loss

    opt_state, ema, losses = opt_init(params), params, []
    start = time.perf_counter()
    for i in range(steps):
        key, step_key = jax.random.split(key)
        opt_state, ema, loss = step(i, opt_state, ema, step_key)
        losses.append(loss)
        if (i + 1) % LOG_EVERY == 0 or i + 1 == steps:
            recent = float(np.mean(jax.device_get(losses[-LOG_EVERY:])))
            log(f"step {i + 1:6d}  loss {recent:.4f}  ({time.perf_counter() - start:.0f} s)")
    final_loss = float(np.mean(jax.device_get(losses[-500:])))
    weights = {name: np.asarray(value, np.float32) for name, value in ema.items()}
    return weights, final_loss, time.perf_counter() - start


# --- The ONNX graph -------------------------------------------------------------------------

class GraphBuilder:
    """The nodes and initializers of one ONNX graph. A node's output tensor takes the node's
    name (multi-output nodes: ``name.0``, ``name.1``...), so tensors read like modules."""

    def __init__(self):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: dict[str, onnx.TensorProto] = {}

    def const(self, name: str, value) -> str:
        """An initializer (made once per name) holding ``value``; returns its name."""
        if name not in self.initializers:
            self.initializers[name] = numpy_helper.from_array(np.asarray(value), name)
        return name

    def op(self, op_type: str, inputs: list[str], name: str, outputs: int = 1, **attrs):
        """Append a node; return its output name, or the list of them if ``outputs`` > 1."""
        names = [name] if outputs == 1 else [f"{name}.{k}" for k in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=name, **attrs))
        return names[0] if outputs == 1 else names

    def shape(self, *dims: int) -> str:
        """A Reshape target; -1 stands for the batch."""
        return self.const("shape." + "x".join(map(str, dims)).replace("-1", "B"),
                          np.array(dims, np.int64))


def export_onnx(weights: dict, metadata: dict[str, str]) -> onnx.ModelProto:
    """The ONNX model of ``forward`` with ``weights``: inputs x float32 [batch, 1, 8, 8],
    t float32 [batch], y int64 [batch]; output eps float32 [batch, 1, 8, 8]."""
    g = GraphBuilder()
    one = g.const("one", np.float32(1.0))
    axis1 = g.const("axes.1", np.array([1], np.int64))
    ln_scale = g.const("layer_norm.scale", np.ones(WIDTH, np.float32))

    def weight(name):
        return g.const(name, weights[name])

    def linear(h, name):                 # token-wise: [B, 16, in] @ [in, out] + [out]
        product = g.op("MatMul", [h, weight(f"{name}.weight")], name)
        return g.op("Add", [product, weight(f"{name}.bias")], f"{name}.add_bias")

    def gemm(h, name):                   # conditioning path: [B, in] -> [B, out]
        return g.op("Gemm", [h, weight(f"{name}.weight"), weight(f"{name}.bias")], name)

    def silu(h, name):
        return g.op("Mul", [h, g.op("Sigmoid", [h], f"{name}.sigmoid")], name)

    def modulate(h, shift, scale, name):
        norm = g.op("LayerNormalization", [h, ln_scale], f"{name}.norm", axis=-1,
                    epsilon=LN_EPS)
        scaled = g.op("Mul", [norm, g.op("Add", [scale, one], f"{name}.one_plus_scale")],
                      f"{name}.scale")
        return g.op("Add", [scaled, shift], f"{name}.shift")

    patches = g.op("Reshape", ["x", g.shape(-1, CHANNELS, GRID, PATCH, GRID, PATCH)],
                   "patchify.split")
    patches = g.op("Transpose", [patches], "patchify.transpose", perm=[0, 2, 4, 3, 5, 1])
    patches = g.op("Reshape", [patches, g.shape(-1, TOKENS, PATCH_DIM)], "patchify")
    h = g.op("Add", [linear(patches, "patch_embed"), g.const("pos_embed", position_embedding())],
             "pos_embed.add")

    angles = g.op("Mul", [g.op("Unsqueeze", ["t", axis1], "t_embed.unsqueeze"),
                          g.const("t_embed.freqs", timestep_frequencies())], "t_embed.angles")
    t_features = g.op("Concat", [g.op("Cos", [angles], "t_embed.cos"),
                                 g.op("Sin", [angles], "t_embed.sin")], "t_embed.features",
                      axis=1)
    t_emb = gemm(silu(gemm(t_features, "t_embed.fc1"), "t_embed.silu"), "t_embed.fc2")
    y_emb = g.op("Gather", [weight("y_embed.weight"), "y"], "y_embed", axis=0)
    cond = silu(g.op("Add", [t_emb, y_emb], "cond"), "cond.silu")          # [B, D]

    def adaln(name, chunks):             # [B, D] -> chunks x [B, 1, D]
        mod = g.op("Unsqueeze", [gemm(cond, name), axis1], f"{name}.unsqueeze")
        return g.op("Split", [mod], f"{name}.split", outputs=chunks, axis=-1,
                    num_outputs=chunks)

    def split_heads(a, name, perm):      # [B, 16, D] -> [B, 16, H, d], then transposed
        a = g.op("Reshape", [a, g.shape(-1, TOKENS, HEADS, HEAD_DIM)], f"{name}.heads")
        return g.op("Transpose", [a], f"{name}.transpose", perm=perm)

    inv_sqrt_d = g.const("attn.scale", np.float32(1.0 / math.sqrt(HEAD_DIM)))
    for block in range(DEPTH):
        p = f"blocks.{block}"
        shift1, scale1, gate1, shift2, scale2, gate2 = adaln(f"{p}.adaLN", 6)
        qkv = linear(modulate(h, shift1, scale1, f"{p}.attn.modulate"), f"{p}.attn.qkv")
        q, k, v = g.op("Split", [qkv], f"{p}.attn.qkv.split", outputs=3, axis=-1,
                       num_outputs=3)
        q = split_heads(q, f"{p}.attn.q", [0, 2, 1, 3])                # Q [B, H, 16, d]
        q = g.op("Mul", [q, inv_sqrt_d], f"{p}.attn.q.scale")
        k_t = split_heads(k, f"{p}.attn.k", [0, 2, 3, 1])              # K^T [B, H, d, 16]
        v = split_heads(v, f"{p}.attn.v", [0, 2, 1, 3])                # V [B, H, 16, d]
        probs = g.op("Softmax", [g.op("MatMul", [q, k_t], f"{p}.attn.qk")],
                     f"{p}.attn.softmax", axis=-1)
        heads = g.op("MatMul", [probs, v], f"{p}.attn.pv")
        heads = g.op("Transpose", [heads], f"{p}.attn.merge.transpose", perm=[0, 2, 1, 3])
        attn = g.op("Reshape", [heads, g.shape(-1, TOKENS, WIDTH)], f"{p}.attn.merge")
        gated = g.op("Mul", [gate1, linear(attn, f"{p}.attn.proj")], f"{p}.attn.gate")
        h = g.op("Add", [h, gated], f"{p}.attn.residual")

        hidden = linear(modulate(h, shift2, scale2, f"{p}.mlp.modulate"), f"{p}.mlp.fc1")
        hidden = g.op("Gelu", [hidden], f"{p}.mlp.gelu", approximate="tanh")
        gated = g.op("Mul", [gate2, linear(hidden, f"{p}.mlp.fc2")], f"{p}.mlp.gate")
        h = g.op("Add", [h, gated], f"{p}.mlp.residual")

    shift, scale = adaln("final.adaLN", 2)
    out = linear(modulate(h, shift, scale, "final.modulate"), "final.linear")
    out = g.op("Reshape", [out, g.shape(-1, GRID, GRID, PATCH, PATCH, CHANNELS)],
               "unpatchify.split")
    out = g.op("Transpose", [out], "unpatchify.transpose", perm=[0, 5, 1, 3, 2, 4])
    g.op("Reshape", [out, g.shape(-1, CHANNELS, SIZE, SIZE)], "eps")

    image = ["batch", CHANNELS, SIZE, SIZE]
    graph = helper.make_graph(
        g.nodes, "dit_digits",
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, image),
                helper.make_tensor_value_info("t", TensorProto.FLOAT, ["batch"]),
                helper.make_tensor_value_info("y", TensorProto.INT64, ["batch"])],
        outputs=[helper.make_tensor_value_info("eps", TensorProto.FLOAT, image)],
        initializer=list(g.initializers.values()))
    opsets = [helper.make_opsetid("", OPSET)]
    model = helper.make_model(graph, opset_imports=opsets,
                              ir_version=helper.find_min_ir_version_for(opsets),
                              producer_name="ditto-hw scripts/train_dit.py")
    helper.set_model_props(model, dict(sorted(metadata.items())))
    onnx.checker.check_model(model, full_check=True)
    return model


def session(model_bytes: bytes) -> ort.InferenceSession:
    """An onnxruntime CPU session without graph optimisations: it runs the nodes as written."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def check_against_jax(sess: ort.InferenceSession, weights: dict) -> float:
    """Max abs difference of onnxruntime and the JAX forward on a random batch of 8; raises
    if it is 1e-4 or more."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((8, CHANNELS, SIZE, SIZE)).astype(np.float32)
    t = rng.uniform(0, T_STEPS - 1, 8).astype(np.float32)
    y = rng.integers(0, CLASSES, 8).astype(np.int64)
    expected = np.asarray(forward({k: jnp.asarray(v) for k, v in weights.items()}, x, t, y))
    got = sess.run(["eps"], {"x": x, "t": t, "y": y})[0]
    error = float(np.abs(got - expected).max())
    if not error < 1e-4:
        raise SystemExit(f"onnxruntime and JAX disagree: max abs error {error:.3g} >= 1e-4")
    return error


# --- Quality check --------------------------------------------------------------------------

def save_grid(samples: np.ndarray, path: Path) -> None:
    """Save [10, 10, 8, 8] samples in [-1, 1] (one row per class) as a greyscale PNG: dark
    strokes on white as in scikit-learn's gallery, each pixel 4x4, 1-pixel light grey gaps."""
    scale, cell = 4, SIZE * 4 + 1
    mosaic = np.full((10 * cell + 1, 10 * cell + 1), -0.6)      # the gaps: light grey
    for row in range(10):
        for col in range(10):
            big = np.kron(samples[row, col], np.ones((scale, scale)))
            mosaic[1 + row * cell:(row + 1) * cell, 1 + col * cell:(col + 1) * cell] = big
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" tag: the PNG does not change with the matplotlib version.
    matplotlib.image.imsave(path, mosaic, cmap="gray_r", vmin=-1, vmax=1,
                            metadata={"Software": None})


def evaluate(model_path: Path, png: Path) -> tuple[float, float]:
    """Sample 50 digits per class with the sampler 'ditto trace' runs (the dit-digits spec:
    20 deterministic DDIM steps, ``ditto.sim.capture.sample``) and classify them with an RBF
    SVM trained on 75 % of the real digits (scaled like the model's data). Saves the first
    10 samples of each class as a grid to ``png``. Returns (accuracy on the real held-out
    25 %, accuracy on the samples, their conditioning label counting as the truth)."""
    images, labels = load_digits_scaled()
    flat = images.reshape(len(images), -1)
    x_train, x_test, y_train, y_test = train_test_split(
        flat, labels, test_size=0.25, random_state=SEED, stratify=labels)
    # gamma 0.001 of scikit-learn's digits example on pixels 0..16 is 0.064 on x / 8 - 1.
    classifier = SVC(gamma=0.064).fit(x_train, y_train)
    real_accuracy = classifier.score(x_test, y_test)

    wanted = np.repeat(np.arange(CLASSES, dtype=np.int64), 50)
    samples = sample("dit-digits", onnx=str(model_path), steps=20, batch=len(wanted),
                     seed=SEED, conditions={"label": wanted.tolist()})
    sample_accuracy = classifier.score(samples.reshape(len(samples), -1), wanted)
    save_grid(np.clip(samples, -1, 1).reshape(CLASSES, 50, SIZE, SIZE)[:, :10], png)
    return real_accuracy, sample_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="training steps")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the ONNX file")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="skip training: load --out and run the quality check")
    args = parser.parse_args()

    if args.evaluate_only:
        model = onnx.load(args.out)
    else:
        weights, final_loss, seconds = train(args.steps)
        metadata = {
            "data": "sklearn load_digits, all 1797, x / 8 - 1, shape [1, 8, 8]",
            "diffusion": f"DDPM epsilon prediction, T = {T_STEPS}, linear betas 1e-4..0.02",
            "architecture": f"DiT adaLN-Zero, patch {PATCH}, width {WIDTH}, depth {DEPTH}, "
                            f"heads {HEADS}, mlp ratio {MLP_RATIO}, timestep freqs {FREQ_DIM}",
            "training": f"{args.steps} steps, batch {BATCH}, Adam lr {LR} warmup {WARMUP} "
                        f"cosine to {LR_FINAL}, EMA {EMA_DECAY} (exported), seed {SEED}",
            "final_loss": f"{final_loss:.5f}",
        }
        model = export_onnx(weights, metadata)
        model_bytes = model.SerializeToString()
        sess = session(model_bytes)
        error = check_against_jax(sess, weights)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(model_bytes)
        log(f"trained in {seconds:.0f} s; final loss {final_loss:.4f}; "
            f"onnxruntime vs JAX max abs error {error:.2e}")
        print(f"wrote {args.out}: {len(model_bytes)} bytes, "
              f"{sum(w.size for w in weights.values())} parameters")
    print("ops:", dict(sorted(Counter(node.op_type for node in model.graph.node).items())))
    real, generated = evaluate(args.out, SAMPLES_PNG)
    print(f"classifier accuracy: real held-out digits {real:.1%}, "
          f"DiT samples (20 DDIM steps) {generated:.1%}; grid in {SAMPLES_PNG}")


if __name__ == "__main__":
    main()
