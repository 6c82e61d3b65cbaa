"""The collator's length-grouped chunks give exactly the embeddings of encoding each column alone."""

from __future__ import annotations

import pytest
import torch

from contrasent import SentenceEncoder
from contrasent.data import ContrastiveCollator, infer_layout
from contrasent.data.batch import MISSING_TEXT_ID

ROWS = [
    {"anchor": "a man plays a guitar on the street corner", "positive": "someone plays music", "negative": "no"},
    {"anchor": "dogs", "positive": "two dogs run across a wide green field together", "negative": "cats sleep"},
    {"anchor": "the sky is blue today", "positive": "clear weather", "negative": "it rains heavily all day"},
]


def test_chunks_restore_view_major_order(tiny_bert_dir) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir).eval()
    layout = infer_layout(["anchor", "positive", "negative"])
    batch = ContrastiveCollator(encoder.tokenizer, layout, max_length=32, chunk_size=2)(ROWS)
    assert len(batch.chunks) == 5  # 9 texts in chunks of 2
    lengths = [f["attention_mask"].sum(1).tolist() for f in batch.chunks]
    flat = [n for chunk in lengths for n in chunk]
    assert flat == sorted(flat), "chunks follow token count"
    with torch.no_grad():
        got = torch.cat([encoder(**features) for features in batch.chunks])[batch.restore]
        for view, column in enumerate(layout.text_columns):
            alone = encoder.encode([row[column] for row in ROWS], convert_to="torch")
            torch.testing.assert_close(got[view * 3:(view + 1) * 3], alone, atol=1e-5, rtol=0)


def test_unsupervised_rows_give_two_views_of_each_text(tiny_bert_dir) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    batch = ContrastiveCollator(encoder.tokenizer, infer_layout(["text"]), max_length=16)(
        [{"text": "one"}, {"text": "two words"}])
    assert batch.num_views == 2 and len(batch) == 2
    assert torch.equal(batch.text_ids[0], batch.text_ids[1])


def test_missing_hard_negatives_are_not_encoded(tiny_bert_dir) -> None:
    """A None negative (a row short of mined negatives): only the texts present are chunked, ``restore``
    lists them view-major skipping the gap, and ``negative_valid`` marks the gap."""
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir).eval()
    layout = infer_layout(["anchor", "positive", "negative_1", "negative_2"])
    rows = [{**row, "negative_1": row["negative"], "negative_2": f"another {i}"} for i, row in enumerate(ROWS)]
    rows[0]["negative_2"] = None
    rows[2]["negative_1"] = rows[2]["negative_2"] = None  # a row with no hard negative at all
    batch = ContrastiveCollator(encoder.tokenizer, layout, max_length=32, chunk_size=2)(rows)
    present = [(view, i) for view, column in enumerate(layout.text_columns) for i, row in enumerate(rows)
               if row[column] is not None]
    assert sum(chunk["input_ids"].shape[0] for chunk in batch.chunks) == len(present) == 9
    assert batch.negative_valid.tolist() == [[True, False], [True, True], [False, False]]
    assert batch.present().sum() == 9 and batch.text_ids.shape == (4, 3)
    assert batch.text_ids[3, 0] == MISSING_TEXT_ID and batch.text_ids[2, 2] == MISSING_TEXT_ID
    with torch.no_grad():
        got = torch.cat([encoder(**features) for features in batch.chunks])[batch.restore]
        texts = [rows[i][layout.text_columns[view]] for view, i in present]
        torch.testing.assert_close(got, encoder.encode(texts, convert_to="torch"), atol=1e-5, rtol=0)


def test_full_rows_have_no_validity_mask(tiny_bert_dir) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    batch = ContrastiveCollator(encoder.tokenizer, infer_layout(["anchor", "positive", "negative"]), 32)(ROWS)
    assert batch.negative_valid is None and batch.present() is None


def test_a_missing_anchor_is_refused_by_column(tiny_bert_dir) -> None:
    encoder = SentenceEncoder.from_pretrained(tiny_bert_dir)
    rows = [dict(row) for row in ROWS]
    rows[1]["positive"] = None
    with pytest.raises(ValueError, match="column 'positive' holds None"):
        ContrastiveCollator(encoder.tokenizer, infer_layout(["anchor", "positive", "negative"]), 32)(rows)
