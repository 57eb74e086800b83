DROP TABLE experiment_feedback;
DROP TABLE experiment_exposures;
DROP TABLE experiments;
