"""The public names other code and users rely on; changing them is a breaking change."""

from __future__ import annotations

import optical_memory.decoders
import optical_memory.errors
import optical_memory.metrics
import optical_memory.renderers


def test_renderers_exports() -> None:
    assert sorted(optical_memory.renderers.__all__) == [
        "AsyncHtmlRenderer",
        "FontSettings",
        "HtmlRenderer",
        "Preset",
        "RenderedPage",
        "TextRenderer",
        "Tier",
        "decay",
    ]
    for name in optical_memory.renderers.__all__:
        assert getattr(optical_memory.renderers, name) is not None


def test_error_tree_has_one_root() -> None:
    root = optical_memory.errors.OpticalMemoryError
    for name in optical_memory.errors.__all__:
        assert issubclass(getattr(optical_memory.errors, name), root)


def test_decoders_and_metrics_exports() -> None:
    assert sorted(optical_memory.decoders.__all__) == [
        "AsyncVLLMDecoder",
        "Decoder",
        "DeepSeekOCRDecoder",
        "ImageInput",
        "NoRepeatNGram",
        "RapidOCRDecoder",
        "TesseractDecoder",
        "VLLMDecoder",
        "get_decoder",
    ]
    assert "char_accuracy" in optical_memory.metrics.__all__


def test_importing_the_package_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, optical_memory, optical_memory.renderers, optical_memory.decoders;"
        "heavy = {'torch', 'playwright', 'rapidocr_onnxruntime', 'onnxruntime', 'transformers'};"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_source_checkout_imports_without_installing() -> None:
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[2]
    # -S: no site-packages, so neither the installed package nor its editable finder help.
    # The model package needs torch, which -S hides: locate it without running it.
    code = (
        "import importlib.util, optical_memory.renderers as r, optical_memory.integrations as i;"
        "m = importlib.util.find_spec('optical_memory.model');"
        "print(r.__file__, m.origin, i.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    files = out.stdout.split()
    assert files == [
        str(root / "renderers" / "__init__.py"),
        str(root / "model" / "__init__.py"),
        str(root / "integrations" / "__init__.py"),
    ]


def test_store_exports() -> None:
    import optical_memory.records
    import optical_memory.store

    assert sorted(optical_memory.store.__all__) == [
        "AsyncRedisStore",
        "AsyncSQLiteStore",
        "AsyncStore",
        "RedisStore",
        "Retention",
        "SQLiteStore",
        "Store",
        "open_async_store",
        "open_store",
    ]
    assert sorted(optical_memory.records.__all__) == [
        "Legibility",
        "Page",
        "Segment",
        "Turn",
        "VisionTokens",
        "new_id",
    ]
    for name in ("StoreUnavailable", "CorruptRecord", "NotFound", "CheckpointError"):
        assert name in optical_memory.errors.__all__


def test_top_level_exports_and_light_import() -> None:
    import subprocess
    import sys

    import optical_memory

    assert sorted(optical_memory.__all__) == [
        "AsyncOpticalMemory",
        "DecayPolicy",
        "OpticalMemory",
        "__version__",
        "readers",
    ]
    for name in optical_memory.__all__:
        assert getattr(optical_memory, name) is not None
    # the memory's dependencies load only when used
    code = "import sys, optical_memory; print('PIL' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_langchain_integration_exports() -> None:
    import optical_memory.integrations.langchain as langchain_integration

    assert sorted(langchain_integration.__all__) == [
        "OpticalByteStore",
        "OpticalChatMessageHistory",
        "OpticalMemoryMiddleware",
        "RecallSegmentTool",
        "SearchMemoryTool",
        "context_messages",
        "count_message_tokens",
        "memory_message",
    ]
    for name in langchain_integration.__all__:
        assert getattr(langchain_integration, name) is not None


def test_documents_exports() -> None:
    import optical_memory.documents

    assert sorted(optical_memory.documents.__all__) == [
        "DocumentPageStore",
        "DocumentSource",
        "Flow",
        "IngestFailure",
        "IngestSettings",
        "IngestSummary",
        "IngestedPage",
        "PageRecord",
        "SourceLike",
        "ingest",
    ]
    for name in ("DocumentError", "EncryptedDocument", "TooManyPages", "DecoderRequired"):
        assert name in optical_memory.errors.__all__
