"""Every name the product is known by, in one place: asset keys, Delta tables, MongoDB collections, groups, pools,
run tags. Plain strings (no Dagster import), so the plain code in `lib/` and the Dagster code in `defs/` share them.

An asset's key is its table's name where it has one table (`raw_user_events` is both).
"""

# --- Delta tables (under PODREC_DELTA_ROOT) and the assets that write them -----------------------------------------
RAW_USER_EVENTS = "raw_user_events"  # every valid listener event, exactly once (ingestion)
QUARANTINED_EVENTS = "quarantined_events"  # every rejected message, with its reason (ingestion)
DAILY_ENGAGEMENT = "daily_engagement"  # (day, listener, episode) → summed event weights (engagement)
ALS_RECOMMENDATIONS = "als_recommendations"  # ALS alone's top-N per listener (models)
# the episode catalog; also mirrored to the MongoDB collection of the same name (content)
EPISODES = "episodes"
TRANSCRIPTS = "transcripts"
TRANSCRIPT_EMBEDDINGS = "transcript_embeddings"
EPISODE_SIMILARITY = "episode_similarity"
FINAL_RECOMMENDATIONS = "final_recommendations"  # every listener's list, before it is published (serving)
# every list the API served, exactly once (feedback)
RECOMMENDATION_IMPRESSIONS = "recommendation_impressions"
# per day, model version and A/B arm: impressions followed by a play (feedback)
ONLINE_HIT_RATE = "online_hit_rate"

# --- Assets that are not one Delta table ---------------------------------------------------------------------------
ALS_MODEL = "als_model"  # a versioned model folder in the model store
RANKER_MODEL = "ranker_model"  # a versioned LightGBM ranker in the model store
PUBLISHED_RECOMMENDATIONS = "published_recommendations"  # the swap of USER_RECOMMENDATIONS and ALS_TOP_N
FRESH_RECOMMENDATIONS = "fresh_recommendations"  # per-listener refreshes between retrains
USER_STATS = "user_stats"  # asset and MongoDB collection
USER_AFFINITIES = "user_affinities"  # asset and MongoDB collection
GLOBAL_STATS = "global_stats"  # asset and MongoDB collection

# --- MongoDB collections (besides USER_STATS, USER_AFFINITIES, GLOBAL_STATS and the EPISODES mirror) ----------------
USER_RECOMMENDATIONS = "user_recommendations"  # what listeners get (the API reads it)
ALS_TOP_N = "als_top_n"  # ALS alone, served beside the final lists for comparison
STATS_CURSORS = "stats_cursors"  # how far each incremental consumer has read raw_user_events
# each (listener, episode)'s latest rating: what a re-rating replaces
USER_EPISODE_RATINGS = "user_episode_ratings"

# --- Kafka topics (defaults; the environment names the real ones) --------------------------------------------------
EVENTS_TOPIC = "user-events"  # PODREC_EVENTS_TOPIC
IMPRESSIONS_TOPIC = "recommendation-impressions"  # PODREC_IMPRESSIONS_TOPIC: what the API showed, and to whom

# --- Groups (one per domain folder under defs/; each folder's defs.yaml sets it) -----------------------------------
INGESTION_GROUP = "ingestion"
ENGAGEMENT_GROUP = "engagement"
MODELS_GROUP = "models"
CONTENT_GROUP = "content"
SERVING_GROUP = "serving"
STATS_GROUP = "stats"
FEEDBACK_GROUP = "feedback"

# --- Pools (concurrency limits in dagster.yaml) ----------------------------------------------------------------------
SPARK_POOL = "spark"  # steps that use the Spark Connect server
KAFKA_INGEST_POOL = "kafka_ingest"  # one ingestion at a time; Delta would reject a racing commit anyway

# --- Run tags --------------------------------------------------------------------------------------------------------
INGEST_TAG = "podrec/ingest"
POSITIONS_TAG = "podrec/positions"
