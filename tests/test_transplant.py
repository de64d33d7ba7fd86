"""Transplant on tiny models built in the test (real tokenizers, random weights): tied/untied heads,
out-of-range ids, a donor of another width, an existing output, added tokens, the provenance report."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from tokkit import load_tokenizer
from tokkit.embedding import load_model_embeddings
from tokkit.transplant import Match, TransplantConfig, align_vocabs, plan_transplant, run_transplant
from tokkit.transplant.methods.simple import piece_mean
from tokkit_cli.main import cli

transformers = pytest.importorskip("transformers")


def sm_chat_template():
    from tokkit import resolve_model

    return resolve_model("smollm2") / "chat_template.jinja"


def _tiny(path, tok, **kw):
    from conftest import tiny_llama

    return tiny_llama(path, tok, **kw)


@pytest.fixture(scope="module")
def toks(smollm2_dir):
    from conftest import need_fixture

    need_fixture("mistral")
    return load_tokenizer(smollm2_dir), load_tokenizer("mistral")


def test_alignment_matches_bytes_across_families_and_specials_by_role(toks):
    sm, mi = toks
    al = align_vocabs(sm.vocab, mi.vocab)
    c = al.counts()
    assert (c["byte_matched"], c["new"], c["special_role"], c["copied"]) == (21873, 10124, 3, 0)
    the = mi.vocab.id_of(b" the")
    assert al.source_id[the] == sm.vocab.id_of(b" the") and al.kind[the] is Match.BYTE_MATCHED
    nl = mi.vocab.byte_fallback_ids[10]  # <0x0A> <-> GPT-2 'Ċ'
    assert al.source_id[nl] == sm.vocab.id_of(b"\n")
    a_fb, a = mi.vocab.byte_fallback_ids[ord("a")], mi.vocab.id_of(b"a")
    assert al.source_id[a_fb] == al.source_id[a] == sm.vocab.id_of(b"a")
    assert [(al.source_id[i], al.kind[i]) for i in (0, 1, 2)] == [(0, Match.SPECIAL_ROLE), (1, Match.SPECIAL_ROLE), (2, Match.SPECIAL_ROLE)]


def test_list_valued_roles_pair_in_order_not_collapsed():
    from tokkit.vocab import SpecialToken, TextVocab

    src = TextVocab(tokens=(b"<a>", b"<b>", b"<c>", b"x"), specials=(SpecialToken(0, "<a>", "eot"), SpecialToken(1, "<b>", "eot"),
                                                                     SpecialToken(2, "<c>", "bos")))
    dst = TextVocab(tokens=(b"x", b"[e1]", b"[e2]", b"[e3]", b"<c>"),
                    specials=(SpecialToken(1, "[e1]", "eot"), SpecialToken(2, "[e2]", "eot"), SpecialToken(3, "[e3]", "eot"),
                              SpecialToken(4, "<c>", "control")))
    al = align_vocabs(src, dst)
    assert al.source_id == (3, 0, 1, -1, 2)
    assert al.kind == (Match.COPIED, Match.SPECIAL_ROLE, Match.SPECIAL_ROLE, Match.SPECIAL_UNMATCHED, Match.SPECIAL_TEXT)


def test_decomposition_concatenates_to_the_token_and_respects_bans(toks):
    from tokkit.transplant.decompose import Decomposer

    sm, mi = toks
    dec = Decomposer(sm.vocab, sm.to_hf())
    al = align_vocabs(sm.vocab, mi.vocab)
    missing = {b for b in range(256) if sm.vocab.id_of(bytes([b])) is None}  # SmolLM2 lacks 21 single bytes
    assert len(missing) == 21
    for i in al.new_ids[:2000] + [mi.vocab.byte_fallback_ids[0xE2]]:
        tok = mi.vocab.tokens[i]
        p = dec.pieces(tok)
        if missing & set(tok):
            assert p == []  # cannot be spelled: the method's fallback row is used (reported)
        else:
            assert p and b"".join(sm.vocab.tokens[j] for j in p) == tok
    the = sm.vocab.id_of(b" the")
    assert dec.pieces(b" the") == [the]
    alt = dec.pieces(b" the", banned=frozenset({the}))
    assert the not in alt and b"".join(sm.vocab.tokens[j] for j in alt) == b" the"


@pytest.mark.parametrize("tied", [True, False])
def test_fvt_transplant_tiny_model_loads_generates_and_reports(tmp_path, toks, tied):
    sm, mi = toks
    src = _tiny(tmp_path / "src", sm, hidden=16, tied=tied)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["transplant", "--src", str(src), "--dst", "mistral", "--method", "fvt", "-o", str(out),
                                 "--heldout", "50"])
    assert r.exit_code == 0, r.output
    assert "cost: 10124 new tokens, 21873 anchors" in r.output and "held-out anchor check (50" in r.output
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert model.config.tie_word_embeddings == tied and model.config.vocab_size == 32000
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    ids = hf_tok("Call me Ishmael", return_tensors="pt", add_special_tokens=False).input_ids
    assert ids[0].tolist() == mi.encode("Call me Ishmael")
    ids = torch.cat([torch.tensor([[1]]), ids], dim=1)  # <s>
    assert model.generate(ids, max_new_tokens=3, do_sample=False).shape[1] == ids.shape[1] + 3
    base, new = load_model_embeddings(src), load_model_embeddings(out)
    al = align_vocabs(sm.vocab, mi.vocab)
    the = mi.vocab.id_of(b" the")
    assert torch.equal(new.input.weight[the], base.input.weight[sm.vocab.id_of(b" the")])
    assert torch.equal(new.input.weight[1], base.input.weight[1])  # <s> <- <|im_start|> by role
    report = json.loads((out / "transplant_report.json").read_text())
    i = next(t["id"] for t in report["tokens"] if t["kind"] == "new" and len(t["pieces"]) > 1)
    row = report["tokens"][i]
    assert i in al.new_ids
    assert row["kind"] == "new" and row["method"] == "fvt"
    expect = piece_mean(base.input.weight, [row["pieces"]], base.input.weight[0])[0]
    torch.testing.assert_close(new.input.weight[i], expect)
    if not tied:
        expect_out = piece_mean(base.output.weight, [row["pieces"]], base.output.weight[0])[0]
        torch.testing.assert_close(new.output.weight[i], expect_out)
    assert report["plan"]["counts"]["new"] == 10124 and report["tokens"][the]["source_text"] == " the"


@pytest.mark.slow
def test_omp_with_donor_of_other_width_untied_base(tmp_path, toks):
    sm, mi = toks
    src = _tiny(tmp_path / "src", sm, hidden=16, tied=False)
    donor = _tiny(tmp_path / "donor", mi, hidden=24, tied=True, seed=1)
    cfg = TransplantConfig(src=str(src), dst="mistral", donor=str(donor), method="omp", k=8, candidates=256, heldout=40)
    plan = plan_transplant(cfg)
    assert plan.summary()["new_tokens"] == 10124
    res = run_transplant(plan, tmp_path / "out")
    new = load_model_embeddings(res.out_dir)
    base = load_model_embeddings(src)
    assert new.input.weight.shape == (32000, 16) and new.output is not None
    row = res.report["tokens"][plan.alignment.new_ids[5]]
    assert len(row["anchors"]) == 8 and 0 <= row["residual"] <= 1
    # the donor is tied: the lm_head reuses the embed coefficients on the base's lm_head anchors
    al = plan.alignment
    src_of = {d: al.source_id[d] for d in al.anchors()[0]}
    exp_in = sum(c * base.input.weight[src_of[a]] for a, c in zip(row["anchors"], row["coeffs"]))
    exp_out = sum(c * base.output.weight[src_of[a]] for a, c in zip(row["anchors"], row["coeffs"]))
    got = new.input.weight[row["id"]]
    # the report keeps the 8 largest of k=8 coefficients (all of them), rounded to 4 decimals
    torch.testing.assert_close(got, exp_in, atol=2e-3 * float(exp_in.abs().max()) + 1e-3, rtol=1e-2)
    torch.testing.assert_close(new.output.weight[row["id"]], exp_out, atol=2e-3 * float(exp_out.abs().max()) + 1e-3, rtol=1e-2)
    h = res.report["heldout_anchor_check"]
    assert h["tokens"] == 40 and -1 <= h["cosine_input_mean"] <= 1 and "cosine_output_mean" in h
    transformers.AutoModelForCausalLM.from_pretrained(res.out_dir)


def test_added_tokens_in_destination_are_matched_by_text(tmp_path, toks):
    sm, mi = toks
    hf = mi.to_hf()
    hf.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    hf.add_tokens(["Queequeg"])
    d = tmp_path / "dst"
    d.mkdir()
    hf.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))
    dst = load_tokenizer(d)
    assert len(dst.vocab) == 32003
    src = _tiny(tmp_path / "src", sm, hidden=16, tied=True)
    shutil.copy(sm_chat_template(), src / "chat_template.jinja")  # SmolLM2's template: <|im_start|> ... <|im_end|>
    res = run_transplant(plan_transplant(TransplantConfig(src=str(src), dst=str(d), method="mean", heldout=0)), tmp_path / "out")
    # the target has no template; the source's control tokens all exist in the new vocab -> kept
    assert res.report["chat_template"].startswith("source")
    kinds = {t["text"]: t["kind"] for t in res.report["tokens"][32000:]}
    assert kinds == {"<|im_start|>": "special_text", "<|im_end|>": "special_text", "Queequeg": "new"}
    new, base = load_model_embeddings(res.out_dir), load_model_embeddings(src)
    assert new.input.weight.shape[0] == 32064  # padded to a multiple of 64
    assert torch.equal(new.input.weight[32000], base.input.weight[sm.vocab.specials[1].id])
    hf_tok = transformers.AutoTokenizer.from_pretrained(res.out_dir)
    assert hf_tok.convert_tokens_to_ids("<|im_end|>") == 32001
    chat = hf_tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert hf_tok(chat, add_special_tokens=False).input_ids[0] == 32000
    # without the added control tokens the template is dropped (auto) and the report says why
    src2 = _tiny(tmp_path / "src2", sm, hidden=16, tied=True)
    shutil.copy(sm_chat_template(), src2 / "chat_template.jinja")
    res2 = run_transplant(plan_transplant(TransplantConfig(src=str(src2), dst="mistral", method="zero", heldout=0)), tmp_path / "out2")
    assert res2.report["chat_template"].startswith("none") and "<|im_start|>" in res2.report["chat_template"]
    assert "chat_template" not in json.loads((tmp_path / "out2" / "tokenizer_config.json").read_text())


def test_errors_exit_2_without_partial_output(tmp_path, toks):
    sm, _ = toks
    small = _tiny(tmp_path / "small", sm, hidden=16, tied=True, rows=1000)  # 49152 ids, 1000 rows
    run = CliRunner().invoke
    r = run(cli, ["transplant", "--src", str(small), "--dst", "mistral", "--method", "mean", "-o", str(tmp_path / "o1")])
    assert r.exit_code == 2 and "49152 ids but the embedding has only 1000 rows" in r.output
    assert not (tmp_path / "o1").exists()
    src = _tiny(tmp_path / "src", sm, hidden=16, tied=True)
    r = run(cli, ["transplant", "--src", str(src), "--dst", "mistral", "--method", "omp", "-o", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "--donor" in r.output and not (tmp_path / "o2").exists()
    r = run(cli, ["transplant", "--src", str(src), "--dst", "mistral", "--donor", str(src), "-o", str(tmp_path / "o3")])
    assert r.exit_code == 2 and "different tokenizer" in r.output
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "mine.txt").write_text("keep")
    r = run(cli, ["transplant", "--src", str(src), "--dst", "mistral", "--method", "zero", "-o", str(tmp_path / "exists")])
    assert r.exit_code == 2 and "--force" in r.output
    assert [p.name for p in (tmp_path / "exists").iterdir()] == ["mine.txt"]
    shutil.rmtree(tmp_path / "exists")


def _ctx(tmp_path, toks, *, tied=True):
    from tokkit.transplant import InitContext

    sm, mi = toks
    src = _tiny(tmp_path / "src", sm, hidden=16, tied=tied)
    base = load_model_embeddings(src)
    return src, InitContext(base=base, alignment=align_vocabs(sm.vocab, mi.vocab), src_hf=sm.to_hf())


def test_heuristic_matches_the_formula_for_one_token(tmp_path, toks):
    from tokkit.transplant.methods import HeuristicInit

    _, ctx = _ctx(tmp_path, toks)
    sm, mi = toks
    t = mi.vocab.id_of(b" differe") or next(i for i in ctx.alignment.new_ids if len(ctx.pieces([i])[0]) == 3)
    res = HeuristicInit().initialize(ctx, [t])
    E = ctx.base.input.weight.float()
    unit = E / E.norm(dim=1, keepdim=True)
    p = ctx.pieces([t])[0]
    phi = E[p].mean(0)
    phi = phi / phi.norm()
    alpha = unit[p] @ phi
    lam = torch.tensor([len(sm.vocab.tokens[i]) / len(mi.vocab.tokens[t]) for i in p])
    w = ((alpha.softmax(0) + lam) / 2 / (0.3 + 1e-5)).softmax(0)
    loc = w @ E[p]
    pool = torch.tensor(sm.vocab.ordinary_ids())
    top = (unit[pool] @ phi).topk(3)
    wg = (top.values / (0.3 + 1e-5)).softmax(0)
    glob = wg @ E[pool[top.indices]]
    torch.testing.assert_close(res.input[0], 0.7 * loc + 0.3 * glob, rtol=1e-4, atol=1e-5)
    assert res.details["neighbours"][0] == pool[top.indices].tolist()


@pytest.mark.slow
def test_heuristic_with_an_auxiliary_model_untied(tmp_path, toks):
    from tokkit.transplant.methods import HeuristicInit

    src, ctx = _ctx(tmp_path, toks, tied=False)
    ids = ctx.alignment.new_ids[100:110]
    res = HeuristicInit(aux_model=str(src)).initialize(ctx, ids)  # the tiny model itself as the embedder
    assert res.input.shape == (10, 16) and res.output.shape == (10, 16)
    assert torch.isfinite(res.input).all() and not torch.equal(res.input, res.output)


@pytest.mark.parametrize("alias", ["mistral", "gemma3"])
def test_identity_alignment_keeps_every_row(alias):
    """Aligning a vocab with itself maps every id to itself: a real piece never to its <0xNN> twin."""
    from conftest import need_fixture

    need_fixture(alias)
    v = load_tokenizer(alias).vocab
    al = align_vocabs(v, v)
    used = [i for i in range(len(v)) if al.kind[i] is not Match.UNUSED]
    assert [al.source_id[i] for i in used] == used
    assert al.counts()["new"] == 0
    space = v.id_of(b" ") if alias == "mistral" else 236743
    assert al.source_id[space] == space and v.tokens[space] == b" "


def test_treat_as_new_rebuilds_a_seeded_share_of_shared_tokens_without_their_own_rows(tmp_path, toks):
    sm, mi = toks
    src = _tiny(tmp_path / "src", sm, hidden=16, tied=True)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["transplant", "--src", str(src), "--dst", "mistral", "--method", "fvt", "-o", str(out),
                                 "--heldout", "0", "--treat-as-new", "0.5"])
    assert r.exit_code == 0, r.output
    report = json.loads((out / "transplant_report.json").read_text())
    al = align_vocabs(sm.vocab, mi.vocab)
    a_dst, a_src = al.anchors()
    multi = [(d, s) for d, s in zip(a_dst, a_src) if len(mi.vocab.tokens[d]) >= 2]
    treated = report["plan"]["treated_as_new"]
    assert treated == round(0.5 * len(multi)) and report["plan"]["new_tokens"] == 10124 + treated
    banned = {s for d, s in multi if report["tokens"][d]["kind"] == "new"}
    assert len(banned) == treated
    base, new = load_model_embeddings(src), load_model_embeddings(out)
    rebuilt = [report["tokens"][d] for d, _ in multi if report["tokens"][d]["kind"] == "new"]
    assert all(not banned.intersection(t["pieces"]) for t in rebuilt)  # never its own (or another treated) row
    t = next(t for t in rebuilt if len(t["pieces"]) > 1)
    expect = piece_mean(base.input.weight, [t["pieces"]], base.input.weight[0])[0]
    torch.testing.assert_close(new.input.weight[t["id"]], expect)
    single = [d for d, s in zip(a_dst, a_src) if len(mi.vocab.tokens[d]) == 1]
    assert all(report["tokens"][d]["kind"] != "new" for d in single)  # every byte stays copied
    again = tmp_path / "again"
    CliRunner().invoke(cli, ["transplant", "--src", str(src), "--dst", "mistral", "--method", "mean", "-o", str(again),
                             "--heldout", "0", "--treat-as-new", "0.5"])
    rep2 = json.loads((again / "transplant_report.json").read_text())
    assert [x["kind"] for x in rep2["tokens"]] == [x["kind"] for x in report["tokens"]]  # seeded: the same tokens
