-- Readings whose z-score against their own sensor and metric exceeds the
-- threshold. Reads the sensor_readings files this run wrote.
WITH stats AS (
  SELECT sensor_id, metric_name, avg(value) AS mean, stddev_samp(value) AS stddev
  FROM sensor_readings
  WHERE value IS NOT NULL
  GROUP BY sensor_id, metric_name
),
scored AS (
  SELECT r.sensor_id, r.metric_name, r.reading_ts, r.value, r.unit, s.mean, s.stddev,
         zscore(r.value, s.mean, s.stddev) AS zscore, r.source_key, r.line_number, r.dt
  -- stats (one row per sensor and metric) comes first: it is the hash join's build
  -- side, so the readings stream through and memory stays bounded.
  FROM stats s
  JOIN sensor_readings r ON r.sensor_id = s.sensor_id AND r.metric_name = s.metric_name
)
SELECT sensor_id, metric_name, reading_ts, value, unit, mean, stddev, zscore,
       CAST(${zscore_threshold} AS DOUBLE) AS threshold, source_key, line_number, dt
FROM scored
WHERE abs(zscore) > ${zscore_threshold}
