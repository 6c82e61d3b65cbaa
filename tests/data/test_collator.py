"""The collator's length-grouped chunks give exactly the embeddings of encoding each column alone."""

from __future__ import annotations

import torch

from contrasent import SentenceEncoder
from contrasent.data import ContrastiveCollator, infer_layout

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
