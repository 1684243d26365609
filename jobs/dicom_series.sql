-- One row per series of each study: its modality, body part, size and frames.
SELECT study_instance_uid,
       series_instance_uid,
       min(series_number) AS series_number,
       min(modality) AS modality,
       min(body_part_examined) AS body_part_examined,
       min(series_description) AS series_description,
       min(study_date) AS study_date,
       count(*) AS instances,
       sum(coalesce(number_of_frames, 1)) AS frames,
       sum(object_size) AS bytes
FROM dicom_instances
GROUP BY study_instance_uid, series_instance_uid
