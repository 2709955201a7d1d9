"""An architecture as a table, as a check against the registry, and as a picture.

- :func:`layer_table`: one row per layer (name, type, output shape, parameters);
- :func:`same_architecture`: the model a chapter builds in plain ``keras`` code against
  :func:`serlib.models.build_model` of the same name, layer by layer, so the code shown
  and the registry cannot drift apart;
- :func:`plot_architecture`: a block diagram (matplotlib only, no Graphviz), top to
  bottom, with the tensor shape after each block.

Explained in the chapters "1-D CNNs", "2-D CNNs", "Recurrent models" and "CNN-LSTM hybrids".
"""
from __future__ import annotations

import pandas as pd

from .errors import SerlibError

#: Layers drawn inside the box of the block before them ("+ BN + ReLU + Dropout 0.2").
FOLDED = ("BatchNormalization", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "Dropout",
          "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "LayerNormalization")

_COLOURS = {"conv": "#cfe2f3", "pool": "#d9ead3", "dense": "#fce5cd", "recurrent": "#e6d7f0",
            "attention": "#f4cccc", "shape": "#eeeeee", "input": "#ffffff", "other": "#fff2cc"}


def _shape(layer) -> tuple:
    """The output shape of ``layer`` without the batch axis."""
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        shape = getattr(layer, "output_shape", None)
    if isinstance(shape, list):  # several outputs: the first one
        shape = shape[0]
    return tuple(shape)[1:] if shape is not None else ()


def _shape_text(shape) -> str:
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _layers(model) -> list:
    if not getattr(model, "built", True) or not getattr(model, "inputs", None):
        raise SerlibError(f"model {getattr(model, 'name', model)!r} is not built yet: start it with "
                          "keras.Input(shape=...) so every layer has an output shape")
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def layer_table(model) -> pd.DataFrame:
    """One row per layer of a built Keras model (its input excluded).

    Columns: ``layer`` (name), ``type`` (class name), ``output shape`` (without the batch
    axis, e.g. ``"(216, 64)"``), ``params`` (weights of that layer, trainable or not).
    Explained in the chapter "1-D CNNs".
    """
    rows = [{"layer": layer.name, "type": type(layer).__name__, "output shape": _shape_text(_shape(layer)),
             "params": int(layer.count_params())} for layer in _layers(model)]
    return pd.DataFrame(rows, columns=["layer", "type", "output shape", "params"])


def same_architecture(model, name: str, *, input_shape=None, n_classes: int | None = None) -> pd.DataFrame:
    """Check that ``model`` is the registry's ``name``: same layers, shapes and parameters.

    Builds :func:`serlib.models.build_model` ``(name, input_shape, n_classes)`` (the
    registry's input shape and class count unless given) and compares the two layer by
    layer: class, output shape and parameter count (names are ignored), then the totals.
    Raises :class:`~serlib.errors.SerlibError` with one line naming the first layer that
    differs; returns :func:`layer_table` of ``model`` when they agree. Explained in the
    chapter "1-D CNNs".
    """
    from .models import build_model

    reference = build_model(name, input_shape, n_classes)
    mine, theirs = layer_table(model), layer_table(reference)

    def describe(table, i):
        if i >= len(table):
            return "no layer"
        row = table.iloc[i]
        return f"{row['type']} {row['output shape']} {row['params']:,} params"

    for i in range(max(len(mine), len(theirs))):
        if i >= len(mine) or i >= len(theirs) or any(
                mine.iloc[i][key] != theirs.iloc[i][key] for key in ("type", "output shape", "params")):
            where = f"layer {i + 1}" + (f" ({mine.iloc[i]['layer']})" if i < len(mine) else "")
            raise SerlibError(f"the model differs from build_model({name!r}) at {where}: "
                              f"this model has {describe(mine, i)}, the registry {describe(theirs, i)}")
    total, expected = int(model.count_params()), int(reference.count_params())
    if total != expected:
        raise SerlibError(f"the model differs from build_model({name!r}): {total:,} parameters in all, "
                          f"the registry's {expected:,}")
    return mine


# ------------------------------------------------------------------------------ the picture
def _activation(layer) -> str:
    act = getattr(layer, "activation", None)
    name = getattr(act, "__name__", None) or (act if isinstance(act, str) else "")
    if type(layer).__name__ in ("ReLU",):
        return "ReLU"
    return {"relu": "ReLU", "linear": "", "softmax": "softmax", "elu": "ELU", "tanh": "tanh",
            "sigmoid": "sigmoid", "selu": "SELU", "gelu": "GELU", "leaky_relu": "LeakyReLU"}.get(name, name or "")


def _size(value) -> str:
    value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    return "×".join(str(v) for v in value)


def _kind_and_label(layer) -> tuple[str, str]:
    """(colour kind, one-line description) of a layer that opens a block."""
    kind = type(layer).__name__
    cfg = layer.get_config()
    act = _activation(layer)
    act_text = f", {act}" if act else ""
    if kind.startswith("Conv") or kind.startswith("SeparableConv") or kind.startswith("DepthwiseConv"):
        strides = _size(cfg.get("strides", 1))
        stride_text = f", stride {strides}" if set(strides.split("×")) != {"1"} else ""
        return "conv", f"{kind} {cfg.get('filters', '')}, kernel {_size(cfg.get('kernel_size'))}{stride_text}{act_text}"
    if "Pooling" in kind:
        short = kind.replace("Pooling", "Pool").replace("Global", "Global ")
        size = cfg.get("pool_size")
        return "pool", f"{short} {_size(size)}" if size and "Global" not in kind else short
    if kind == "Dense":
        return "dense", f"Dense {cfg['units']}{act_text}"
    if kind in ("LSTM", "GRU", "SimpleRNN"):
        how = "sequence" if cfg.get("return_sequences") else "last step"
        return "recurrent", f"{kind} {cfg['units']} ({how})"
    if kind == "Bidirectional":
        inner = layer.forward_layer
        how = "sequence" if inner.return_sequences else "last step"
        return "recurrent", f"Bi{type(inner).__name__} 2×{inner.units} ({how}, {cfg.get('merge_mode')})"
    if "Attention" in kind:
        return "attention", kind
    if kind == "Dropout" or kind in FOLDED:
        return "other", _folded_text(layer).lstrip("+ ")
    if kind in ("Flatten", "Reshape", "Permute", "Concatenate", "Add", "Lambda"):
        return "shape", kind
    return "other", kind


def _folded_text(layer) -> str:
    kind = type(layer).__name__
    if kind == "BatchNormalization":
        return "+ BN"
    if kind in ("Activation", "ReLU", "Softmax"):
        return f"+ {_activation(layer) or kind}" if kind != "Softmax" else "+ softmax"
    if "Dropout" in kind or kind == "GaussianNoise":
        rate = getattr(layer, "rate", None) or getattr(layer, "stddev", None)
        return f"+ {kind.replace('Spatial', 'spatial ')} {rate:g}" if rate is not None else f"+ {kind}"
    if kind == "LayerNormalization":
        return "+ LayerNorm"
    return f"+ {kind}"


def _parents(layer, known: set) -> list[str]:
    names = []
    for node in getattr(layer, "_inbound_nodes", [])[:1]:
        for parent in getattr(node, "parent_nodes", []):
            op = getattr(parent, "operation", None)
            if op is not None and op.name in known:
                names.append(op.name)
    return names


def _blocks(model) -> tuple[list[dict], tuple]:
    """The blocks of the diagram in drawing order, and the model's input shape."""
    layers = _layers(model)
    names = {layer.name for layer in model.layers}
    inputs = [layer for layer in model.layers if type(layer).__name__ == "InputLayer"]
    input_name = inputs[0].name if inputs else "<input>"
    input_shape = tuple(model.inputs[0].shape)[1:] if getattr(model, "inputs", None) else ()
    children: dict[str, int] = {}
    parents = {}
    previous = input_name
    for layer in layers:
        found = _parents(layer, names) or [previous]  # a Sequential without recorded nodes: a chain
        parents[layer.name] = found
        for p in found:
            children[p] = children.get(p, 0) + 1
        previous = layer.name
    blocks, block_of = [], {input_name: -1}
    for layer in layers:
        kind = type(layer).__name__
        mine = parents[layer.name]
        host = block_of.get(mine[0]) if len(mine) == 1 else None
        if (kind in FOLDED and host is not None and host >= 0 and blocks[host]["last"] == mine[0]
                and children.get(mine[0], 0) == 1):
            block = blocks[host]
            block["extras"].append(_folded_text(layer))
        else:
            colour, label = _kind_and_label(layer)
            block = {"label": label, "colour": colour, "extras": [], "params": 0,
                     "parents": sorted({block_of.get(p, -1) for p in mine})}
            blocks.append(block)
            host = len(blocks) - 1
        block["last"] = layer.name
        block["shape"] = _shape(layer)
        block["params"] += int(layer.count_params())
        block_of[layer.name] = host
    for block in blocks:  # rows: the longest path from the input
        block["row"] = 1 + max([blocks[p]["row"] if p >= 0 else 0 for p in block["parents"]] or [0])
    return blocks, input_shape


def plot_architecture(model_or_name, ax=None, *, title: str | None = None, input_text: str | None = None):
    """A block diagram of a Keras model (or of the registry's model of that name).

    Top to bottom: the input, then one box per block (a layer with weights, pooling,
    flatten, reshape, recurrent, attention ...), with batch normalisation, activations and
    dropout folded into the box before them (``+ BN + ReLU + Dropout 0.2``); beside each
    box the tensor shape after it and its parameters; arrows between; the softmax output
    last. Parallel branches (e.g. mean and max pooling) stand side by side. The figure
    grows with the number of blocks, so 30-layer models stay readable. ``input_text``
    describes the input (default: the registry's ``input_text`` for a name). Returns the
    Figure. Explained in the chapter "1-D CNNs".
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    name = None
    if isinstance(model_or_name, str):
        from .models import build_model, get_model

        name = get_model(model_or_name).name
        model = build_model(name)
        if input_text is None:
            input_text = get_model(name).input_text
    else:
        model = model_or_name
    blocks, input_shape = _blocks(model)
    n_rows = 1 + max([b["row"] for b in blocks] or [0])
    row_h = 0.62
    shape_x, params_x = 6.75, 9.85
    if ax is None:
        height = 1.1 + row_h * n_rows
        fig = plt.figure(figsize=(8, height))
        ax = fig.add_axes((0.01, 0.01, 0.98, 1 - 0.5 / height))
    fig = ax.figure
    ax.set_xlim(0, 10)
    ax.set_ylim(n_rows - 0.4, -0.75)
    ax.text(shape_x, -0.6, "shape after the block", ha="left", va="center", fontsize=7.5, color="#666666")
    ax.text(params_x, -0.6, "parameters", ha="right", va="center", fontsize=7.5, color="#666666")
    ax.axis("off")
    box_x, box_w, box_h = 0.3, 6.2, 0.74
    by_row: dict[int, list[int]] = {}
    for i, block in enumerate(blocks):
        by_row.setdefault(block["row"], []).append(i)
    place = {-1: (box_x + box_w / 2, 0.0, box_w)}

    def draw_box(cx, row, width, text, colour, sub=None, fontsize=8.5):
        ax.add_patch(FancyBboxPatch((cx - width / 2, row - box_h / 2), width, box_h,
                                    boxstyle="round,pad=0.02,rounding_size=0.12", linewidth=0.8,
                                    edgecolor="#555555", facecolor=_COLOURS.get(colour, "#ffffff")))
        if sub:
            ax.text(cx, row - 0.13, text, ha="center", va="center", fontsize=fontsize)
            ax.text(cx, row + 0.17, sub, ha="center", va="center", fontsize=fontsize - 1, color="#333333")
        else:
            ax.text(cx, row, text, ha="center", va="center", fontsize=fontsize)

    draw_box(box_x + box_w / 2, 0, box_w, f"Input: {input_text}" if input_text else "Input", "input")
    ax.text(shape_x, 0, _shape_text(input_shape), ha="left", va="center", fontsize=8.5)
    for row, members in sorted(by_row.items()):
        width = (box_w - 0.2 * (len(members) - 1)) / len(members)
        for k, i in enumerate(members):
            block = blocks[i]
            cx = box_x + width / 2 + k * (width + 0.2)
            place[i] = (cx, row, width)
            extras = " ".join(block["extras"])
            one_line = f"{block['label']} {extras}".strip()
            side = _shape_text(block["shape"])
            if len(members) > 1:  # side by side: the shape goes inside the box
                draw_box(cx, row, width, block["label"], block["colour"], f"{extras} → {side}".strip(), 7.5)
            elif len(one_line) <= 58:
                draw_box(cx, row, width, one_line, block["colour"])
            else:
                draw_box(cx, row, width, block["label"], block["colour"], extras)
            for p in block["parents"]:
                px, prow, _ = place[p]
                ax.add_patch(FancyArrowPatch((px, prow + box_h / 2), (cx, row - box_h / 2),
                                             arrowstyle="-|>", mutation_scale=9, linewidth=0.8, color="#555555",
                                             shrinkA=0, shrinkB=0))
        if len(members) == 1:
            block = blocks[members[0]]
            ax.text(shape_x, row, _shape_text(block["shape"]), ha="left", va="center", fontsize=8.5)
            if block["params"]:
                ax.text(params_x, row, f"{block['params']:,}", ha="right", va="center", fontsize=8.5)
        elif any(blocks[i]["params"] for i in members):
            ax.text(params_x, row, " + ".join(f"{blocks[i]['params']:,}" for i in members),
                    ha="right", va="center", fontsize=8.5)
    total = int(model.count_params())
    heading = title if title is not None else f"{name or model.name}: {total:,} parameters"
    if heading:
        ax.set_title(heading, fontsize=10, loc="left")
    return fig


__all__ = ["layer_table", "same_architecture", "plot_architecture", "FOLDED"]
