"""Config values are checked by type before anything is built: booleans, integers (1e3 is 1000), numbers;
a YAML syntax error names the file or the override (issue 12, item 1)."""

import pytest

import pinnflow as pf


@pytest.mark.parametrize(("override", "message"), [
    ("data_parallel=maybe", "data_parallel: must be true or false, got 'maybe'"),
    ("network.normalize=1", "network.normalize: must be true or false"),
    ("optim.lr=fast", "optim.lr: must be a number, got 'fast'"),
    ("optim.steps=2.5", "optim.steps: must be an integer"),
    ("optim.clip_norm=big", "optim.clip_norm: must be a number or null"),
    ("collocation.target_lo=[1, x]", "collocation.target_lo: must be a list or a number or null"),
    ("seed=[1]", "seed: must be an integer"),
    ("optim.lr=[1", "not valid YAML"),
])
def test_bad_values_are_named(override, message):
    with pytest.raises(pf.ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        pf.Config().override([override])


def test_numbers_are_converted_to_the_fields_type():
    cfg = pf.Config().override(["optim.steps=1e3", "T=2", "optim.lr=1", "collocation.target_lo=[-3, -4.5]"])
    assert cfg.optim.steps == 1000 and isinstance(cfg.optim.steps, int)
    assert cfg.T == 2.0 and isinstance(cfg.T, float) and isinstance(cfg.optim.lr, float)
    assert cfg.collocation.target_lo == [-3.0, -4.5]


def test_yaml_syntax_error_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  lr: [1e-3\n")
    with pytest.raises(pf.ConfigError, match=r"bad.yaml: not valid YAML"):
        pf.Config.from_yaml(path)
