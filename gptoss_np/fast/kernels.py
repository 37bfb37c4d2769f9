"""The fast implementations behind gptoss_np.kernels: the same products as the plain definitions, computed on all
cores and, for MXFP4 experts, straight from the packed bytes.

Memory-mapped packed experts: reading an expert maps its pages into this process (they count in RSS as file-backed
pages until unmapped). After each product, once more than MAPPED_BUDGET bytes of experts are mapped, the least
recently used experts are unmapped again (madvise MADV_DONTNEED): the bytes stay in the OS page cache, so mapping
them again later costs minor page faults, not a disk read, and RSS stays bounded however many experts a prompt
touches (a 16-token prompt of gpt-oss-20b touches nearly all 12 GB of them).
"""

import mmap
from collections import OrderedDict

from ..formats.safetensors_io import mapped_span
from . import threads
from .mxfp4_matmul import mxfp4_matmul_many

MAPPED_BUDGET = 2 << 30  # bytes of memory-mapped expert pages kept mapped, over all experts of all models (LRU)
MAPPED = OrderedDict()  # (id(mmap), offset) -> [(mmap, offset, length)] of one expert's bytes, oldest first


def dense_matmul(x, weight):
    """x @ W.T; big weights (threads.split_dense) have their rows split over the worker threads."""
    if x.ndim == 2 and x.dtype == weight.dtype and threads.split_dense(weight):
        return threads.matmul_rows(x, weight)
    return x @ weight.T  # [T, in] -> [T, out]


def expert_matmuls(experts, es, xs):
    """[x_i @ W_{e_i}.T]: packed experts share one queue of MXFP4 row chunks (mxfp4_matmul_many), so the worker
    threads meet once per call, not once per expert; float experts are plain products."""
    if not experts.packed:
        return [dense_matmul(x, experts.matrix(e, x.dtype)) for e, x in zip(es, xs)]
    ys = mxfp4_matmul_many(xs, [experts.blocks[e] for e in es], [experts.scales[e] for e in es],
                           [f"{experts.name}[{e}]" for e in es])
    for e in es:
        touched(experts, e)
    return ys


def touched(experts, e):
    """Record that expert e's pages are mapped now; unmap the oldest recorded experts beyond MAPPED_BUDGET."""
    spans = [s for s in (mapped_span(experts.blocks[e]), mapped_span(experts.scales[e])) if s is not None]
    if not spans:
        return  # in memory, nothing to release
    key = (id(spans[0][0]), spans[0][1])  # the entries hold their mmap, so the key stays unique while listed
    if key in MAPPED:
        MAPPED.move_to_end(key)
        return
    MAPPED[key] = spans
    total = sum(length for spans in MAPPED.values() for _, _, length in spans)
    while total > MAPPED_BUDGET and len(MAPPED) > 1:
        _, old = MAPPED.popitem(last=False)
        for mm, start, length in old:
            mm.madvise(mmap.MADV_DONTNEED, start, length)
            total -= length
