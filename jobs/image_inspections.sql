-- The review flags over this run's images (the columns the image source
-- measures, with the flags schemas/image_inspections.toml marks derived). Each
-- image is compared with its own station (sharpness: median and MAD, a robust
-- z-score; images the station pattern gives no station have no baseline) and
-- with every other image (the same bytes; a perceptual hash within
-- ${duplicate_distance} bits, found by near_duplicates, naslake-udfs phash.rs,
-- without comparing every pair). Thresholds are the job's params.
WITH base AS (
  SELECT *,
         median(sharpness) OVER (PARTITION BY station) AS station_median,
         count(*) OVER (PARTITION BY station) AS station_images,
         count(*) OVER (PARTITION BY content_sha256) AS same_bytes,
         near_duplicates(phash, CAST(${duplicate_distance} AS INT)) OVER () AS near
  FROM images
),
spread AS (
  SELECT *,
         median(abs(sharpness - station_median)) OVER (PARTITION BY station) AS station_mad
  FROM base
),
scored AS (
  SELECT *,
         CASE WHEN station IS NOT NULL AND station_images >= ${blur_min_station_images} AND station_mad > 0
              THEN (sharpness - station_median) / (1.4826 * station_mad) END AS sharpness_z
  FROM spread
),
flagged AS (
  SELECT *,
         -- Below the floor, and below the station's own baseline where it has one.
         sharpness < ${blur_floor} AND coalesce(sharpness_z < -(${blur_z}), true) AS blurry,
         brightness_p50 < ${dark_median} OR dark_fraction > ${clipped_fraction} AS too_dark,
         brightness_p50 > ${bright_median} OR bright_fraction > ${clipped_fraction} AS overexposed,
         entropy < ${min_entropy} OR rms_contrast < ${min_contrast} AS low_information,
         CAST(greatest(width, height) AS DOUBLE) / least(width, height) > ${max_aspect_ratio} AS odd_aspect,
         same_bytes > 1 AS exact_duplicate,
         near > 0 AS near_duplicate
  FROM scored
)
SELECT source_key,
       object_size,
       object_etag,
       object_last_modified,
       content_sha256,
       format,
       suffix_matches,
       width,
       height,
       color_type,
       bit_depth,
       jpeg_progressive,
       captured_at,
       capture_time_source,
       camera_make,
       camera_model,
       orientation,
       exif_error,
       station,
       thumbnail_width,
       thumbnail_height,
       brightness_p1,
       brightness_p50,
       brightness_p99,
       dark_fraction,
       bright_fraction,
       rms_contrast,
       sharpness,
       entropy,
       phash,
       sharpness_z, blurry, too_dark, overexposed, low_information, odd_aspect,
       exact_duplicate, near_duplicate,
       blurry OR too_dark OR overexposed OR low_information OR odd_aspect
         OR exact_duplicate OR near_duplicate OR coalesce(NOT suffix_matches, false) AS needs_review,
       true_names('blurry,too_dark,overexposed,low_information,odd_aspect,exact_duplicate,near_duplicate,wrong_suffix',
                  blurry, too_dark, overexposed, low_information, odd_aspect,
                  exact_duplicate, near_duplicate, coalesce(NOT suffix_matches, false)) AS review_reasons,
       capture_date
FROM flagged
