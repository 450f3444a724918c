# The next step, written for Vineyard's CSI driver, unchanged: it reads the frame back.
import vineyard

df = vineyard.csi.read("/vineyard/data/x.pkl")
print(f"read {len(df)} rows")
print(f"value sum {df['value'].sum():.6f}")
print(f"cities {sorted(df['city'].cat.categories)}")
print(f"last day {df['day'].iloc[-1]}")
