"""A real byte-level BPE tokenizer, small enough for the tiny test models.

It has the released tokenizer's special tokens (BOS 0, EOS 1, pad 2) and its OCR tokens
(``<image>``, grounding and table tags) at the ids a tiny config uses, and one id per
byte, so any text encodes and decodes exactly.
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from tokenizers.pre_tokenizers import ByteLevel

SPECIALS = ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>")
# Offsets from the <image> id, as in the released tokenizer (128815 ... 128822).
OCR_TOKENS = (
    "<image>",
    "<|ref|>",
    "<|/ref|>",
    "<|det|>",
    "<|/det|>",
    "<|grounding|>",
    "<td>",
    "</td>",
)


def write_tiny_tokenizer(directory: Path, image_token_id: int = 1000) -> Path:
    """Write ``tokenizer.json`` into ``directory`` and return its path.

    Args:
        directory: Where to write.
        image_token_id: Id of ``<image>``; the grounding and table tags follow it.

    Returns:
        The file written.
    """
    vocab = {token: index for index, token in enumerate(SPECIALS)}
    for index, char in enumerate(sorted(ByteLevel.alphabet())):
        vocab[char] = len(SPECIALS) + index
    for offset, token in enumerate(OCR_TOKENS):
        vocab[token] = image_token_id + offset
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIALS])
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in OCR_TOKENS])
    path = directory / "tokenizer.json"
    tokenizer.save(str(path))
    return path
