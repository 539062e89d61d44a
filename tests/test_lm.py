from __future__ import annotations

import math

import pytest

from asr.decode.lm import EOS, UNK, estimate, read_arpa, write_arpa

CORPUS = ["a b c", "a b d", "b c a", "a a b c d", "c d", "d", "b b b a"]


def histories(model):
    return [()] + [h for order in model.backoffs for h in order]


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_probabilities_sum_to_one_for_every_history(order):
    model = estimate(CORPUS, order)
    vocab = [w for w in model.vocab if w != "<s>"]
    assert UNK in vocab and EOS in vocab
    for h in histories(model):
        total = sum(10 ** model.log10_prob(w, h) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-9), h


def test_known_values_on_a_tiny_corpus():
    model = estimate(["x y", "x y", "y"], order=2)
    # Bigram model. This corpus lacks the count-of-counts Chen & Goodman's
    # estimate needs, so the fallback discounts apply: D1 = 0.5, D2 = 1.0.
    # Unigrams use continuation counts: x <- {<s>} = 1, y <- {<s>, x} = 2,
    # </s> <- {y} = 1; total 4, gamma = (0.5 + 1.0 + 0.5) / 4 = 0.5, and the
    # uniform base over {x, y, </s>, <unk>} is 0.25.
    p_y = (2 - 1.0) / 4 + 0.5 * 0.25
    assert 10 ** model.log10_prob("y", ()) == pytest.approx(p_y)
    p_unk = 0.5 * 0.25
    assert 10 ** model.log10_prob(UNK, ()) == pytest.approx(p_unk)
    # bigrams keep raw counts: after "x" only "y", twice -> (2 - 1.0) / 2, and
    # gamma(x) = D2 / 2
    gamma_x = 1.0 / 2
    assert 10 ** model.log10_prob("y", ("x",)) == pytest.approx(0.5 + gamma_x * p_y)
    # an unseen bigram backs off with gamma(x)
    p_end = (1 - 0.5) / 4 + 0.5 * 0.25
    assert 10 ** model.log10_prob(EOS, ("x",)) == pytest.approx(gamma_x * p_end)


def test_arpa_round_trip_and_format(tmp_path):
    model = estimate(CORPUS, 3)
    path = tmp_path / "lm.arpa"
    write_arpa(model, path)
    text = path.read_text()
    assert text.startswith("\\data\\\nngram 1=") and text.rstrip().endswith("\\end\\")
    again = read_arpa(path)
    for h in histories(model):
        for w in ["a", "b", "c", "d", EOS]:
            assert again.log10_prob(w, h) == pytest.approx(
                model.log10_prob(w, h), abs=1e-6
            )


def test_flashlight_decoder_loads_the_arpa(tmp_path):
    from torchaudio.models.decoder import ctc_decoder

    path = tmp_path / "lm.arpa"
    write_arpa(estimate(CORPUS, 3), path)
    lexicon = tmp_path / "lexicon.txt"
    lexicon.write_text("".join(f"{w}\t{w} |\n" for w in "abcd"))
    decoder = ctc_decoder(
        lexicon=str(lexicon), tokens=["-", "|", "a", "b", "c", "d"], lm=str(path)
    )
    assert decoder is not None


def test_empty_corpus_is_refused():
    with pytest.raises(ValueError):
        estimate(["", "   "], 3)
    assert math.isfinite(estimate(["a"], 2).log10_prob("a", ()))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_vocabulary_words_missing_from_the_text_get_the_unk_mass(order):
    model = estimate(CORPUS, order, vocab=["e", "f", "a", EOS])
    plain = estimate(CORPUS, order)
    vocab = [w for w in model.vocab if w != "<s>"]
    assert sorted(model.vocab) == sorted([*plain.vocab, "e", "f"])
    for h in histories(model):  # still a distribution over the larger vocabulary
        total = sum(10 ** model.log10_prob(w, h) for w in vocab)
        assert total == pytest.approx(1.0, abs=1e-9), h
    assert model.log10_prob("e", ()) == model.log10_prob(UNK, ())
    assert model.log10_prob("e", ("a",)) > -10  # reachable after any history
    # the seen words lose only what the larger uniform base takes from them
    assert 10 ** model.log10_prob("a", ()) < 10 ** plain.log10_prob("a", ())


def test_read_vocab_takes_the_first_field_of_dictionaries_and_lexicons(tmp_path):
    from asr.decode.lm import read_vocab

    dic = tmp_path / "an4.dic"
    dic.write_text(
        ";;; comment\nDECEMBER  D IH S EH M B ER\nTHOUSAND  TH AW Z AH N\n"
        "THOUSAND(2)  TH AW Z AH N D\n\nO'CLOCK  AH K L AA K\n"
    )
    assert read_vocab(dic) == ["december", "thousand", "o'clock"]
    lex = tmp_path / "lexicon.txt"
    lex.write_text("eight\te i g h t |\nfive\tf i v e |\n# note\n")
    assert read_vocab(lex) == ["eight", "five"]


def test_lm_build_with_a_vocabulary_lets_the_lexicon_decoder_output_its_words(
    tmp_path,
):
    from asr.cli.app import main

    text = tmp_path / "text.txt"
    text.write_text("go left\ngo right\nstop\n")
    vocab = tmp_path / "words.txt"
    vocab.write_text("up\ndown\n")
    lm = tmp_path / "lm.arpa"
    assert (
        main(["lm", "build", str(text), "--vocab", str(vocab), "--output", str(lm)])
        == 0
    )
    words = read_arpa(lm).vocab
    assert {"up", "down", "go", "left", "right", "stop"} <= set(words)
