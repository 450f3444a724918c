# A pipeline step written for Vineyard's CSI driver, unchanged: it builds a frame and
# hands it to the next step through the volume mounted at /vineyard.
import numpy as np
import pandas as pd
import vineyard

rows = 100_000
rng = np.random.default_rng(42)
df = pd.DataFrame({
    "id": np.arange(rows),
    "value": rng.random(rows),
    "city": rng.choice(["Hangzhou", "Paris", "Lima"], rows),
    "day": pd.date_range("2024-01-01", periods=rows, freq="min"),
})
df["city"] = df["city"].astype("category")

vineyard.csi.write(df, "/vineyard/data/x.pkl")
print(f"wrote {len(df)} rows")
