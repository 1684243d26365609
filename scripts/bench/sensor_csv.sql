SELECT sensor_id, metric_name, "timestamp" AS reading_ts, value, unit,
       CAST(NULL AS VARCHAR) AS quality, source_key, line_number,
       CAST("timestamp" AS DATE) AS dt
FROM long
