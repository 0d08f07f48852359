"""neocli.presets: model presets and validated ``--param NAME=VALUE`` overrides."""
from __future__ import annotations

import pytest

from neocli._errors import NeoError
from neocli.codecs import BytesCodec
from neocli.presets import DEFAULTS, PARAM_NAMES, apply_params, build_hierarchy, parse_param


def test_parse_param_types_and_ranges():
    assert parse_param("layers.encoder.lr=0.25") == ("layers.encoder.lr", 0.25)
    assert parse_param("layers.1.encoder.l_radius=3") == ("layers.1.encoder.l_radius", 3)
    assert parse_param("anticipation=false") == ("anticipation", False)
    for bad, word in [("layers.encoder.lr", "NAME=VALUE"), ("layers.encoder.lr=abc", "not a valid"),
                      ("layers.encoder.lr=1.5", "must be in"), ("ios.encoder.lr=0.1", "unknown param"),
                      ("layers.encoder.l_radius=1.5", "integer"), ("decoder.lr=0.1", "unknown param"),
                      ("ios.decoder.scale=nan", "must be in")]:
        with pytest.raises(NeoError, match=word):
            parse_param(bad)


def test_apply_params_to_all_layers_or_one():
    h = build_hierarchy(BytesCodec("byte"), {"layers": 2, "hidden": "2x2x8"})
    apply_params(h, {"layers.decoder.lr": 0.3, "layers.1.encoder.lr": 0.125, "ios.decoder.scale": 4.0})
    assert [l.decoder.lr for l in h.params.layers] == [pytest.approx(0.3)] * 2
    assert [l.encoder.lr for l in h.params.layers] == [0.5, 0.125]
    assert h.params.ios[0].decoder.scale == 4.0
    with pytest.raises(NeoError, match="has 2 layers"):
        apply_params(h, {"layers.5.encoder.lr": 0.1})


def test_build_hierarchy_uses_the_defaults_and_the_seed():
    h = build_hierarchy(BytesCodec(DEFAULTS["byte_layout"]))
    assert h.get_num_layers() == DEFAULTS["layers"]
    a = build_hierarchy(BytesCodec("byte"), {"seed": 3, "hidden": "2x2x8"}).serialize_weights_to_buffer()
    b = build_hierarchy(BytesCodec("byte"), {"seed": 3, "hidden": "2x2x8"}).serialize_weights_to_buffer()
    c = build_hierarchy(BytesCodec("byte"), {"seed": 4, "hidden": "2x2x8"}).serialize_weights_to_buffer()
    assert bytes(a) == bytes(b) != bytes(c)
    with pytest.raises(NeoError, match="unknown model options"):
        build_hierarchy(BytesCodec("byte"), {"hiden": "2x2x8"})
    assert "layers.encoder.lr" in PARAM_NAMES and "ios.decoder.scale" in PARAM_NAMES


def test_presets_defaults_are_the_training_defaults():
    from neocli import training
    d = DEFAULTS
    assert parse_hidden_sizes(d) == [training.DEFAULT_HIDDEN] * training.DEFAULT_LAYERS
    assert d["byte_layout"] == training.DEFAULT_BYTE_LAYOUT
    assert {k: d[k] for k in training.ARCH_DEFAULTS} == training.ARCH_DEFAULTS
    assert d["params"] == training.DEFAULT_PARAMS


def parse_hidden_sizes(d):
    from neocli.presets import parse_hidden
    return parse_hidden(d["hidden"], d["layers"])
