//! VI-ReID evaluation protocols: SYSU-MM01, RegDB, LLCM (CMC, mAP, mINP).
