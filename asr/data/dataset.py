"""The speech Dataset (audio + token ids, augmented reproducibly), padding
collate for training batches, and length-bucketed padded batches for inference."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from asr.audio.files import SAMPLE_RATE, AudioError, load_audio
from asr.data.batches import padded_arrays
from asr.data.manifest import Manifest, Utterance, read_manifest
from asr.data.text import Tokenizer
from asr.features.edges import EdgeCrop, EdgePad, EdgeTrim
from asr.features.wave_augment import AdditiveNoise, BandLimit, RandomEQ

log = logging.getLogger(__name__)


class SpeechDataset(torch.utils.data.Dataset):
    """Item i -> (waveform (S,), token ids (L,), i); unreadable audio -> None.

    Edge trimming, cropping and padding, speed perturbation, additive noise,
    random EQ and band-limiting (in that order) draw from (seed, epoch, i), so a
    resumed run sees exactly the same audio whatever the number of workers.
    """

    def __init__(
        self,
        utts: Sequence[Utterance],
        tokenizer: Tokenizer,
        speed_factors: Sequence[float] = (),
        seed: int = 0,
        noise: AdditiveNoise | None = None,
        band_limit: BandLimit | None = None,
        edge_trim: EdgeTrim | None = None,
        edge_pad: EdgePad | None = None,
        eq: RandomEQ | None = None,
        edge_crop: EdgeCrop | None = None,
    ):
        # a Manifest stays lazy: one line is parsed per item
        self.utts = utts if isinstance(utts, Manifest) else list(utts)
        self.tokenizer = tokenizer
        self.speed_factors = list(speed_factors)
        self.noise, self.band_limit = noise, band_limit
        self.edge_trim, self.edge_pad = edge_trim, edge_pad
        self.edge_crop = edge_crop
        self.eq = eq
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int):
        utt = self.utts[i]
        try:
            wav = torch.from_numpy(load_audio(utt.audio_filepath))
        except AudioError as err:
            log.warning("skipped utterance: %s", err)
            return None
        rng = random.Random(f"{self.seed}/{self.epoch}/{i}")
        if self.edge_trim is not None:  # first: they are about the recording's edges
            wav = self.edge_trim(wav, rng)
        if self.edge_crop is not None:
            wav = self.edge_crop(wav, rng)
        if self.edge_pad is not None:
            wav = self.edge_pad(wav, rng)
        if self.speed_factors:
            wav = speed_perturb(wav, rng.choice(self.speed_factors))
        if self.noise is not None:
            wav = self.noise(wav, rng)
        if self.eq is not None:  # the microphone colours speech and room alike
            wav = self.eq(wav, rng)
        if self.band_limit is not None:  # last: the channel comes after the room
            wav = self.band_limit(wav, rng)
        return wav, torch.tensor(self.tokenizer.encode(utt.text), dtype=torch.long), i


def speed_perturb(wav: torch.Tensor, factor: float) -> torch.Tensor:
    """Play ``wav`` ``factor`` times faster (pitch moves too, as in Kaldi)."""
    if factor == 1.0:
        return wav
    # resampling from SR*factor to SR shortens the signal by ``factor``
    orig = int(round(SAMPLE_RATE * factor / 100)) * 100
    return torchaudio.functional.resample(wav, orig, SAMPLE_RATE)


@dataclass
class Batch:
    wavs: torch.Tensor  # (B, S) float32, zero-padded
    wav_lens: torch.Tensor  # (B,)
    targets: torch.Tensor  # (B, L) long, zero-padded
    target_lens: torch.Tensor  # (B,)
    indices: list[int]

    def to(self, device: torch.device) -> Batch:
        nb = device.type == "cuda"
        return Batch(
            self.wavs.to(device, non_blocking=nb),
            self.wav_lens.to(device, non_blocking=nb),
            self.targets.to(device, non_blocking=nb),
            self.target_lens.to(device, non_blocking=nb),
            self.indices,
        )

    def pin_memory(self) -> Batch:
        return Batch(
            self.wavs.pin_memory(),
            self.wav_lens.pin_memory(),
            self.targets.pin_memory(),
            self.target_lens.pin_memory(),
            self.indices,
        )


def collate(items: list) -> Batch | None:
    """Pad waveforms and targets of the readable items; None if none is readable."""
    items = [it for it in items if it is not None]
    if not items:
        return None
    wavs, targets, indices = zip(*items)
    return Batch(
        wavs=torch.nn.utils.rnn.pad_sequence(list(wavs), batch_first=True),
        wav_lens=torch.tensor([len(w) for w in wavs]),
        targets=torch.nn.utils.rnn.pad_sequence(list(targets), batch_first=True),
        target_lens=torch.tensor([len(t) for t in targets]),
        indices=list(indices),
    )


def padded_batches(waveforms: Sequence[np.ndarray], batch_seconds: float):
    """``padded_arrays`` as tensors: (indices, (B, S) tensor, lengths (B,))."""
    for batch, padded, lens in padded_arrays(waveforms, batch_seconds):
        yield batch, torch.from_numpy(padded), torch.from_numpy(lens)


def noise_recordings(manifest: str) -> list[np.ndarray]:
    """The recordings of a noise manifest (augment.noise_manifest), held in
    memory for AdditiveNoise; none for an empty path."""
    if not manifest:
        return []
    sources = [load_audio(u.audio_filepath) for u in read_manifest(manifest)]
    log.info("noise: %d recordings from %s", len(sources), manifest)
    return sources
