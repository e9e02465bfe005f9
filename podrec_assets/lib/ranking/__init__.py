"""The multi-stage ranker (seed 004): recall → ranking → re-ranking, shared by the nightly lists, the near-real-time
lists and the offline evaluation. Plain code: numpy, pandas, scipy and LightGBM, no Dagster and no Spark.

    history.py     a listener's (episode, engagement) pairs, from daily_engagement or straight from raw events
    catalog.py     the episode side in one index space: titles, shows, categories, content vectors, neighbours,
                   ALS factors, and the episode statistics at a reference time
    listeners.py   the listener side: what they heard, their ALS vector (fold-in), anchors, affinities
    candidates.py  RECALL: a few hundred candidates per listener from ALS, content, popularity and new episodes,
                   and THE FEATURES each candidate is ranked on
    ranker.py      RANKING: a LightGBM ranker (XE-NDCG) over those features, calibrated scores, reasons from the
                   features that produced each score
    rerank.py      RE-RANKING: rules on the ranked list (at most N episodes of one show in the top 10)
    strategies.py  the lists a strategy serves (ranker, ALS alone, hybrid, content, popularity), one entry point
    training.py    the ranker's labels on time splits, its gate, and what it is compared with
"""
