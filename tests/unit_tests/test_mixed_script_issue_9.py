"""Issue 9: Chinese that mixes Latin words, numbers and Markdown tables (no OCR here).

The read-back of such pages lost points to three things these tests pin down: a
whole-line choice of ASCII or full-width punctuation, the thin ``|`` rules of tables,
and a metric that counted the optional space between a CJK character and a Latin word.
"""

from __future__ import annotations

import pytest

from optical_memory.decoders._layout import fit_punctuation, repair_tables
from optical_memory.metrics import char_accuracy


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        ("已于3月16日14:32发货,物流单号是YT77。", "已于3月16日14:32发货，物流单号是YT77。"),
        ("版本v2.8.3发布以后.", "版本v2.8.3发布以后。"),
        ("张伟:先别急,看看日志?", "张伟：先别急，看看日志？"),
        ("Error: Too many connections, retry (once)", "Error: Too many connections, retry (once)"),
        ("复制(replication)和vector（1024）", "复制（replication）和vector(1024)"),
        ("3,000到4,000个token", "3,000到4,000个token"),
        ("A1:没有装字体", "A1：没有装字体"),
    ],
)
def test_each_mark_takes_the_width_of_its_neighbours(read: str, expected: str) -> None:
    assert fit_punctuation(read) == expected


def test_table_rules_are_put_back() -> None:
    read = "试验环境如下：\n项目|配置|\n----]\nCPU|2核，无GPU|\nPython3.11.9 |\n第一周"
    assert repair_tables(read) == (
        "试验环境如下：\n| 项目 | 配置 |\n|---|---|\n| CPU | 2核，无GPU |\n| Python3.11.9 |\n第一周"
    )


def test_a_lost_header_rule_is_inserted() -> None:
    read = "| 任务 | 负责人 |\n混排页面 | 陈晨 |"
    assert repair_tables(read) == "| 任务 | 负责人 |\n|---|---|\n| 混排页面 | 陈晨 |"


def test_lines_outside_tables_are_untouched() -> None:
    text = "a | b | c\nplain prose line\n-----\nanother line"
    assert repair_tables(text) == text


def test_space_between_cjk_and_latin_does_not_count() -> None:
    # Under half of this text is CJK, so whitespace between Latin words still counts.
    reference = "用 Redis 7.2 存储 vision tokens and pages"
    assert char_accuracy(reference, "用Redis 7.2存储vision tokens and pages") == 1.0
    assert char_accuracy(reference, "用Redis 7.2存储 visiontokens and pages") < 1.0


def test_mixed_chinese_gets_the_dense_preset_s_mixed_size() -> None:
    from optical_memory.renderers import TextRenderer
    from optical_memory.renderers.layout import is_mixed_cjk

    prose = "外婆家的院子开始变得拥挤起来，屋檐下挂满了腊肉和香肠。" * 20
    mixed = "生产环境的 /api/v2/orders 接口超时了，P99 从 120ms 涨到 3.4s\n| 15:02 | 发布 |\n"
    mixed *= 20
    assert not is_mixed_cjk(prose) and is_mixed_cjk(mixed)
    assert not is_mixed_cjk("plain English text")
    dense = TextRenderer(preset="dense")
    assert dense.render(prose, tier="small")[0].font.size_px == 8.0
    assert dense.render(mixed, tier="small")[0].font.size_px == 9.0
