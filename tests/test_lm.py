from __future__ import annotations

import math

import pytest

from asr.lm import EOS, UNK, estimate, read_arpa, write_arpa

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
