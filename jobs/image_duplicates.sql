-- Pairs of this run's images whose perceptual hashes are within
-- ${duplicate_distance} bits, without comparing every pair: phash_bands(h) cuts
-- a hash into four 16-bit bands and phash_probes(h, d) lists every band value
-- within d/4 bits of its own; two hashes within d bits share (pigeonhole) at
-- least one such value, so joining probes to bands finds every pair, and the
-- candidates are checked at full length (naslake-udfs, phash.rs).
WITH h AS (
  SELECT source_key, content_sha256, phash, station FROM image_inspections
),
probes AS (
  SELECT source_key, content_sha256, phash, station,
         unnest(phash_probes(phash, CAST(${duplicate_distance} AS INT))) AS band
  FROM h
),
bands AS (
  SELECT source_key, content_sha256, phash, station, unnest(phash_bands(phash)) AS band
  FROM h
),
pairs AS (
  SELECT DISTINCT a.source_key AS source_key_a, b.source_key AS source_key_b,
         hamming_distance(a.phash, b.phash) AS distance,
         a.content_sha256 = b.content_sha256 AS identical,
         a.station AS station_a, b.station AS station_b
  FROM bands b
  JOIN probes a ON a.band = b.band
  WHERE a.source_key < b.source_key
    AND hamming_distance(a.phash, b.phash) <= ${duplicate_distance}
)
SELECT source_key_a, source_key_b, distance, identical, station_a, station_b
FROM pairs
