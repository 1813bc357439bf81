"""The named limits that bound every read the leak detector makes from an untrusted image.

Each limit is a size, count or ratio that a hostile image could otherwise push without bound. Passing a
`ScanLimits` down (rather than reading module constants) lets tests shrink them to exercise the bad cases.
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True, slots=True)
class ScanLimits:
    max_file_bytes: int = 64 * MIB  # read per file; the rest of a larger file is skipped with a warning
    chunk_bytes: int = 4 * MIB  # size of one Content handed to the rules
    chunk_overlap_bytes: int = 4 * KIB  # so a secret straddling a chunk boundary is still whole in one chunk
    max_nested_depth: int = 3  # archives inside archives inside a layer
    max_archive_entries: int = 10_000  # members of one nested archive (and of an image archive)
    max_compression_ratio: int = 100  # expanded / compressed, checked once past ratio_check_min_bytes
    ratio_check_min_bytes: int = 1 * MIB  # small, highly compressible members are normal
    max_expanded_bytes_per_archive: int = 256 * MIB  # total expanded size of one nested archive
    max_tar_header_bytes: int = 1 * MIB  # pax / GNU long-name headers
    max_config_bytes: int = 4 * MIB  # image config JSON
    max_manifest_bytes: int = 4 * MIB  # manifests, indexes, manifest.json, token responses
    max_json_depth: int = 64  # nesting of any JSON document above; real ones nest under 10
    max_layers: int = 1000
    max_path_bytes: int = 4096
    max_index_depth: int = 4  # index -> index -> ... -> manifest
    binary_sniff_bytes: int = 8 * KIB  # a NUL byte in this prefix marks a file binary
    read_block_bytes: int = 1 * MIB  # block size for reading compressed layer blobs
    # A layer blob as stored, when its descriptor gives no size (a size it gives is the bound then). Includes
    # anything after the end of a gzip or zstd stream, which is read to check the digest.
    max_blob_bytes: int = 64 * GIB
    # Whole layers, as decompressed. The rest of a layer is decompressed even past max_file_bytes (to check
    # its digest), so without these a 71 KB zstd layer expands to 2 GiB and a 33 MB one to 1 TiB.
    # Real layers reach a few GiB (CUDA, ML frameworks, SDKs); 16 GiB leaves room and still ends a bomb.
    max_layer_expanded_bytes: int = 16 * GIB
    max_image_expanded_bytes: int = 64 * GIB  # all layers of one image (one platform), in turn
    # Uncompressed / compressed bytes read so far. Tars of binaries compress 2-4x, text-heavy layers (sources,
    # node_modules, locales) 5-20x and rarely 50x; gzip tops out near 1030x and zstd goes far beyond. 200
    # leaves 4x room over the most compressible real layers; a layer that is mostly one zero-filled file (a
    # preallocated database, a sparse lastlog stored whole) can exceed it and is reported, not scanned on.
    max_layer_compression_ratio: int = 200
    # Below this, a layer costs under a second to expand whatever its ratio: small layers of config files or
    # zeros are often very compressible, and the ratio of the first blocks says little.
    layer_ratio_check_min_bytes: int = 64 * MIB

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if getattr(self, name) < 0:
                raise ValueError(f"ScanLimits.{name} must not be negative")
        if self.chunk_overlap_bytes >= self.chunk_bytes:
            raise ValueError("ScanLimits.chunk_overlap_bytes must be smaller than chunk_bytes")
