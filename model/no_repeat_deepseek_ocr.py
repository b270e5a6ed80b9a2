"""The official recipe's n-gram no-repeat rule (vLLM window semantics).

Once ``n`` ids are generated, the last ``n - 1`` form a prefix; every n-gram starting within
the last ``window`` positions whose first ``n - 1`` ids equal that prefix bans its last id,
except whitelisted ids (``<td>``, ``</td>``: table markup repeats legitimately).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers.generation.logits_process import LogitsProcessor

from optical_memory.errors import InvalidSettingError

__all__ = ["TABLE_CELL_IDS", "NoRepeatNGram", "NoRepeatNGramLogitsProcessor", "ban_ids"]

TABLE_CELL_IDS = (128821, 128822)
"""``<td>`` and ``</td>`` in the released tokenizer."""


@dataclass(frozen=True)
class NoRepeatNGram:
    """The n-gram no-repeat rule, over generated ids only (vLLM semantics).

    The fields are named as in vLLM's ``NGramPerReqLogitsProcessor`` arguments (and the
    core's ``optical_memory.decoders.NoRepeatNGram``), so one setting serves both paths.

    Attributes:
        ngram_size: ``n``; the official image recipe uses 30 (20 for PDFs, 40 for
            benchmarks).
        window_size: How many of the latest positions n-grams may start in.
        whitelist_token_ids: Ids that are never banned (``<td>``, ``</td>`` by default).

    Raises:
        InvalidSettingError: A size below 1.
    """

    ngram_size: int = 30
    window_size: int = 90
    whitelist_token_ids: tuple[int, ...] = TABLE_CELL_IDS

    def __post_init__(self) -> None:
        if self.ngram_size < 1 or self.window_size < 1:
            raise InvalidSettingError(
                "ngram_size and window_size must be at least 1, got "
                f"{self.ngram_size} and {self.window_size}"
            )
        object.__setattr__(self, "whitelist_token_ids", tuple(self.whitelist_token_ids))

    def banned(self, generated: Sequence[int]) -> set[int]:
        """Ids that may not come next after ``generated``.

        Args:
            generated: The ids generated so far (no prompt ids).

        Returns:
            The banned ids, whitelist excluded; empty while fewer than ``ngram_size`` ids
            exist.
        """
        n = self.ngram_size
        length = len(generated)
        if length < n:
            return set()
        prefix = list(generated[length - n + 1 :])
        banned: set[int] = set()
        # n-grams start in [length - window, length - n], clipped to the sequence.
        for start in range(max(0, length - self.window_size), length - n + 1):
            if list(generated[start : start + n - 1]) == prefix:
                banned.add(generated[start + n - 1])
        return banned.difference(self.whitelist_token_ids)


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """:class:`NoRepeatNGram` as a transformers logits processor, for ``model.generate``.

    Args:
        rule: The rule (official defaults when not given).
        prompt_length: Columns of ``input_ids`` that are prompt (the padded prompt length
            in a batch); only later ids count as generated.
    """

    def __init__(self, rule: NoRepeatNGram | None = None, prompt_length: int = 0) -> None:
        self.rule = rule or NoRepeatNGram()
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        """Set the scores of banned ids to ``-inf`` in every row.

        Args:
            input_ids: ``(batch, prompt + generated)`` ids.
            scores: ``(batch, vocab)`` next-token scores.

        Returns:
            The scores, with banned ids at ``-inf`` (a copy when anything is banned).
        """
        rows = input_ids[:, self.prompt_length :].tolist()
        return ban_ids(scores, [self.rule.banned(row) for row in rows])


def ban_ids(scores: torch.Tensor, banned: Sequence[set[int]]) -> torch.Tensor:
    if not any(banned):
        return scores
    scores = scores.clone()
    for row, ids in enumerate(banned):
        if ids:
            scores[row, sorted(ids)] = float("-inf")
    return scores
