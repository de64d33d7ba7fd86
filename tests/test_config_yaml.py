"""Every YAML recipe (train, image, prior) is read by one reader, ``tokkit.config.read_yaml``: plain YAML only, each
key once, anchors and ``<<`` merge keys as in YAML. A recipe that breaks a rule is a FormatError naming the line and
the fix, and exit code 2 at the CLI, whichever command reads it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tokkit.config import read_yaml
from tokkit.errors import FormatError

ICONS = Path(__file__).resolve().parents[1] / "data" / "image" / "icons"
PYTHON_TAG = 'steps: !!python/object/apply:os.system ["touch PWNED"]\n'


def _yaml(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_key_twice_is_refused_at_any_depth_with_both_lines(tmp_path):
    with pytest.raises(FormatError, match=r"recipe .*r\.yaml: key 'steps' appears twice in one mapping \(line 1 and "
                                          r"line 3\); YAML would keep only the last: remove one of them"):
        read_yaml(_yaml(tmp_path, "steps: 2\nlr: 0.1\nsteps: 5\n"))
    with pytest.raises(FormatError, match=r"key 'width' appears twice .*\(line 3 and line 4\)"):
        read_yaml(_yaml(tmp_path, "steps: 2\nmodel:\n  width: 8\n  width: 16\n"))
    with pytest.raises(FormatError, match=r"key 'a' appears twice .*\(line 2 and line 3\)"):  # in a list item
        read_yaml(_yaml(tmp_path, "runs:\n  - a: 1\n    a: 2\n"))
    with pytest.raises(FormatError, match=r"keys '1' and '1\.0' are one key once read \(line 1 and line 2\)"):
        read_yaml(_yaml(tmp_path, "1: a\n1.0: b\n"))  # equal as read: the dict would keep one
    with pytest.raises(FormatError, match=r"key 'c' appears twice .*line 3 and line 4"):  # the first in the file
        read_yaml(_yaml(tmp_path, "a: 1\nb:\n  c: 1\n  c: 2\na: 2\n"))


def test_anchors_aliases_and_merge_keys_keep_working(tmp_path):
    text = ("base: &b {x: 1, y: 2}\n"
            "c:\n  <<: *b\n  y: 3\n"               # overriding a merged key is not a key written twice
            "d: {<<: [*b, {z: 1}], z: 4}\n"
            "e: *b\nf: [*b, *b]\n")
    assert read_yaml(_yaml(tmp_path, text)) == {
        "base": {"x": 1, "y": 2}, "c": {"x": 1, "y": 3}, "d": {"x": 1, "y": 2, "z": 4},
        "e": {"x": 1, "y": 2}, "f": [{"x": 1, "y": 2}, {"x": 1, "y": 2}]}
    assert read_yaml(_yaml(tmp_path, "a: !!str 1\nb: !!float 2\nc: !!binary aGk=\n")) == {"a": "1", "b": 2.0, "c": b"hi"}


def test_tags_are_checked_before_anything_is_constructed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FormatError, match=r"the tag !!python/object/apply:os\.system at line 1, column 8 constructs a "
                                          r"Python object; tags that construct Python objects are not allowed \(plain "
                                          r"YAML only"):
        read_yaml(_yaml(tmp_path, PYTHON_TAG))
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(FormatError, match=r"the tag !!python/name:os\.system at line 2, column 7"):  # nested, a key too
        read_yaml(_yaml(tmp_path, "a:\n  - ? !!python/name:os.system ''\n    : 1\n"))
    with pytest.raises(FormatError, match=r"the tag !custom at line 1, column 8 is not a plain YAML type"):
        read_yaml(_yaml(tmp_path, "steps: !custom 2\n"))
    with pytest.raises(FormatError, match=r"the tag !!merge at line 1, column 4 is not a plain YAML type"):
        read_yaml(_yaml(tmp_path, "a: !!merge x\n"))  # a merge tag anywhere but a key
    with pytest.raises(FormatError, match=r"the value 'abc' at line 1, column 8 is not a valid !!int .*fix the value"):
        read_yaml(_yaml(tmp_path, "steps: !!int abc\n"))  # a ValueError traceback before
    with pytest.raises(FormatError, match=r"not valid YAML at line 2.*fix the syntax"):  # a real syntax error
        read_yaml(_yaml(tmp_path, "steps: [1, 2\n"))


@pytest.mark.parametrize("kind", ["image", "prior"])
def test_image_and_prior_recipes_refuse_a_key_twice_and_python_tags(tmp_path, monkeypatch, kind):
    pytest.importorskip("torch")
    from tokkit_cli.main import cli

    if kind == "image":
        from tokkit.image import load_recipe as load
        cmd = ["image", "train", "--data", str(ICONS), "--steps", "1", "--device", "cpu"]
    else:
        from tokkit.image.prior import load_prior_recipe as load
        cmd = ["image", "prior", "train", str(tmp_path / "ckpt"), "--data", str(ICONS), "--steps", "1", "--device", "cpu"]
    monkeypatch.chdir(tmp_path)
    dup, tag = _yaml(tmp_path, "steps: 2\nseed: 1\nsteps: 5\n", "dup.yaml"), _yaml(tmp_path, PYTHON_TAG, "tag.yaml")
    with pytest.raises(FormatError, match=rf"{kind} recipe .*dup\.yaml: key 'steps' appears twice in one mapping "
                                          r"\(line 1 and line 3\)"):
        load(dup)
    with pytest.raises(FormatError, match=rf"{kind} recipe .*tag\.yaml: the tag !!python/object/apply:os\.system at "
                                          r"line 1, column 8 constructs a Python object"):
        load(tag)
    for rec, needles in ((dup, ("key 'steps' appears twice", "line 1 and line 3", "remove one of them")),
                         (tag, ("!!python/object/apply:os.system", "constructs a Python object", "plain YAML only"))):
        out = tmp_path / f"o-{rec.stem}"
        r = CliRunner().invoke(cli, [*cmd, "--recipe", str(rec), "-o", str(out)])
        assert r.exit_code == 2, r.output
        assert "not valid YAML" not in r.output and "Traceback" not in r.output, r.output
        for n in needles:
            assert n in r.output, r.output
        assert not out.exists()
    assert not (tmp_path / "PWNED").exists() and not os.path.exists("PWNED")
    once = _yaml(tmp_path, "steps: &n 3\nseed: *n\n", "ok.yaml")  # anchors still fine
    assert (load(once).steps, load(once).seed) == (3, 3)
